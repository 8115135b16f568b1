"""Data the families share, all offline: nilearn's MNI152 template and tissue maps,
scikit-image's images, and contrasts simulated from them (said so where shown)."""

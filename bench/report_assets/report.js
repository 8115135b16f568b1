// dynbench report: inlined into each page by bench/report.py.
// FIGURES, TABLES and ROW_LIMIT are defined just before this script.
"use strict";

function fmt(v, kind){
  if(v===null||v===undefined) return "";
  if(typeof v!=="number") return String(v);
  if(kind==="seconds"){const a=Math.abs(v);
    if(a>=1||a===0) return v.toPrecision(4)+" s";
    if(a>=1e-3) return (v*1e3).toPrecision(4)+" ms";
    return (v*1e6).toPrecision(4)+" µs";}
  if(kind==="bytes"){if(v===0) return "0 B"; const u=["B","KiB","MiB","GiB","TiB"];
    const i=Math.max(0,Math.min(4,Math.floor(Math.log(Math.abs(v))/Math.log(1024))));
    return (v/Math.pow(1024,i)).toPrecision(4)+" "+u[i];}
  if(kind==="speedup"||kind==="ratio") return "x"+v.toPrecision(3);
  if(kind==="percent") return (v>0?"+":"")+(v===0?"0":(100*v).toPrecision(3))+" %";
  if(kind==="p") return v<1e-4?v.toExponential(1):v.toPrecision(2);
  if(Number.isInteger(v)&&Math.abs(v)<1e6) return String(v);
  return Math.abs(v)>=1e4||Math.abs(v)<1e-3?v.toExponential(3):v.toPrecision(4);
}

function verdictClass(v){
  if(typeof v!=="string") return "";
  if(v.startsWith("untestable")) return "untestable";
  const word=v.split(" (")[0];  // "worse (seeds: 4 of 6)" is still worse
  if(word==="slower"||word==="worse"||v==="missing in B") return "regression";
  if(word==="faster"||word==="better") return "improvement";
  return "";
}

function swatch(colour){
  const s=document.createElement("span"); s.className="swatch"; s.style.background=colour;
  return s;
}

// A table drawn from its data: filter by words, sort by a header click, at most
// ROW_LIMIT rows at once. Cells are text nodes: nothing in the data becomes markup.
function setupTable(el){
  const spec=TABLES[+el.dataset.table]; const thead=el.querySelector("thead");
  const tbody=el.querySelector("tbody"); const count=el.querySelector(".count");
  const input=el.querySelector("input.filter");
  const text=spec.rows.map(r=>r.map((v,i)=>fmt(v,spec.kinds[i])).join(" ").toLowerCase());
  const order=spec.rows.map((_,i)=>i); let sortCol=-1, sortDir=1;
  const hr=document.createElement("tr");
  spec.columns.forEach((c,i)=>{const th=document.createElement("th");th.textContent=c;
    th.title="sort by "+c;th.onclick=()=>{sortDir=(sortCol===i)?-sortDir:1;sortCol=i;
      order.sort((a,b)=>{const x=spec.rows[a][i],y=spec.rows[b][i];
        if(x===null) return 1; if(y===null) return -1;
        const d=typeof x==="number"&&typeof y==="number"?x-y:String(x).localeCompare(String(y));
        return d*sortDir;});
      render();};hr.appendChild(th);});
  thead.appendChild(hr);
  function render(){
    const words=input.value.toLowerCase().split(/\s+/).filter(w=>w);
    const shown=order.filter(i=>words.every(w=>text[i].includes(w)));
    const frag=document.createDocumentFragment();
    for(const i of shown.slice(0,ROW_LIMIT)){
      const r=spec.rows[i]; const tr=document.createElement("tr");
      r.forEach((v,j)=>{const k=spec.kinds[j]; const td=document.createElement("td");
        if(k==="verdict"){const c=verdictClass(v); if(c) tr.classList.add(c); td.className="verdict";}
        else if(typeof v==="number") td.className="num";
        else if(spec.columns[j]==="error") td.className="err";
        else if(j===0) td.className="label";
        if(j===0&&spec.colours) td.appendChild(swatch(spec.colours[i]));
        td.appendChild(document.createTextNode(fmt(v,k)));
        tr.appendChild(td);});
      frag.appendChild(tr);}
    tbody.replaceChildren(frag);
    count.textContent=shown.length+" of "+spec.rows.length+" rows"+
      (shown.length>ROW_LIMIT?" (first "+ROW_LIMIT+" shown; filter to narrow)":"");
  }
  input.addEventListener("input",render); render();
}

// Static tables (a task's configurations): sorted by a header click on data-v.
function setupSortable(table){
  const tbody=table.tBodies[0];
  table.querySelectorAll("thead th").forEach((th,i)=>{let dir=1;
    th.addEventListener("click",()=>{
      const rows=[...tbody.rows];
      const key=r=>{const v=r.cells[i]?r.cells[i].dataset.v:""; const n=parseFloat(v);
        return v!==""&&v!==undefined&&!isNaN(n)&&String(n)!=="NaN"?n:v;};
      rows.sort((a,b)=>{const x=key(a),y=key(b);
        if(x===""||x===undefined) return 1; if(y===""||y===undefined) return -1;
        const d=typeof x==="number"&&typeof y==="number"?x-y:String(x).localeCompare(String(y));
        return d*dir;});
      dir=-dir; tbody.replaceChildren(...rows);});});
}

const BASE_LAYOUT={margin:{l:60,r:16,t:30,b:48},showlegend:false,hovermode:"closest",
  font:{size:11},paper_bgcolor:"white",plot_bgcolor:"white"};
const AXIS={gridcolor:"#eee",zerolinecolor:"#ccc",linecolor:"#999",showline:true,mirror:true};

function layoutOf(variant){
  const l=Object.assign({},BASE_LAYOUT,variant.layout||{});
  l.xaxis=Object.assign({},AXIS,(variant.layout||{}).xaxis||{});
  l.yaxis=Object.assign({},AXIS,(variant.layout||{}).yaxis||{});
  return l;
}

// Hidden configurations (the key's entries clicked off), by section.
function hiddenIn(el){
  const section=el.closest("section");
  return new Set([...(section?section.querySelectorAll("ul.key li.off"):[])].map(li=>li.dataset.config));
}

function draw(el, which){
  const fig=FIGURES[+el.id.slice(3)];
  const variant=fig.variants[which||0];
  const hidden=hiddenIn(el);
  const data=variant.data.map(t=>Object.assign({},t,
    {visible:hidden.has(t.legendgroup)?false:true}));
  el.dataset.drawn="1";
  return Plotly.react(el,data,layoutOf(variant),{responsive:true,displaylogo:false});
}

const plots=[...document.querySelectorAll("div.plot")];
function drawAll(){ for(const el of plots) if(!el.dataset.drawn) draw(el,0); }

document.querySelectorAll("div.table").forEach(setupTable);
document.querySelectorAll("table.sortable").forEach(setupSortable);
document.querySelectorAll("select.variant").forEach(sel=>{
  sel.addEventListener("change",()=>{
    const el=document.getElementById("fig"+sel.dataset.fig);
    const fig=FIGURES[+sel.dataset.fig]; const v=fig.variants[+sel.value];
    const cap=el.parentElement.querySelector(".caption");
    if(v.caption&&cap) cap.textContent=v.caption;
    draw(el,+sel.value);});});
document.querySelectorAll("ul.key li").forEach(li=>{
  li.addEventListener("click",()=>{
    li.classList.toggle("off");
    li.closest("section").querySelectorAll("div.plot").forEach(el=>{
      const sel=el.parentElement.querySelector("select.variant");
      draw(el,sel?+sel.value:0);});});});

// Figures draw on load (not when scrolled into view: printing would leave the ones
// not yet seen blank), one at a time so the page stays responsive while they do.
(function drawInTurn(i){
  if(i>=plots.length) return;
  if(!plots[i].dataset.drawn) draw(plots[i],0);
  setTimeout(()=>drawInTurn(i+1),0);
})(0);
window.addEventListener("beforeprint",()=>{drawAll();
  plots.forEach(el=>{ if(el.data) Plotly.Plots.resize(el); });});

// Pictures: filter by words; a click opens one full size on the page (no jump).
document.querySelectorAll("input.gfilter").forEach(inp=>{
  const gallery=inp.nextElementSibling;
  inp.addEventListener("input",()=>{const w=inp.value.toLowerCase();
    gallery.querySelectorAll("figure").forEach(f=>{
      f.style.display=f.dataset.text.includes(w)?"":"none";});});});
const lightbox=document.getElementById("lightbox");
const lightImg=lightbox.querySelector("img");
function openPicture(img){
  lightImg.src=img.src; lightImg.alt=img.alt;
  // small pictures are scaled up to a readable size, pixels kept sharp
  const scale=Math.max(1,Math.min(8,Math.floor(Math.min(
    0.9*window.innerWidth/(img.naturalWidth||1),0.85*window.innerHeight/(img.naturalHeight||1)))));
  lightImg.style.width=img.naturalWidth?(img.naturalWidth*scale)+"px":"";
  lightbox.hidden=false;
}
document.querySelectorAll(".gallery a.zoom").forEach(a=>{
  const open=e=>{e.preventDefault(); openPicture(a.querySelector("img"));};
  a.addEventListener("click",open);
  a.addEventListener("keydown",e=>{ if(e.key==="Enter"||e.key===" ") open(e); });});
lightbox.addEventListener("click",()=>{lightbox.hidden=true;});
document.addEventListener("keydown",e=>{ if(e.key==="Escape") lightbox.hidden=true; });

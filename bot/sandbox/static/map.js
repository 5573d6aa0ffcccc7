// The district drawn from its GeoJSON as SVG: no tiles, no internet. A flat projection is
// plenty for a few kilometres: x east in metres (shrunk by cos(latitude)), y south in metres.

const SVG = "http://www.w3.org/2000/svg";
const M_PER_DEG = 111320;
const PAD = 40; // metres around the district

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

export function projection(bounds) {
  const [minLon, minLat, maxLon, maxLat] = bounds;
  const kx = M_PER_DEG * Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const ky = M_PER_DEG;
  return {
    width: (maxLon - minLon) * kx + 2 * PAD,
    height: (maxLat - minLat) * ky + 2 * PAD,
    xy: (lon, lat) => [(lon - minLon) * kx + PAD, (maxLat - lat) * ky + PAD],
    lonlat: (x, y) => [(x - PAD) / kx + minLon, maxLat - (y - PAD) / ky],
  };
}

function ringPath(ring, proj, close) {
  const pts = ring.map(([lon, lat]) => proj.xy(lon, lat).map((v) => v.toFixed(1)).join(" "));
  return `M${pts.join("L")}${close ? "Z" : ""}`;
}

// [path data, is area] for a GeoJSON geometry of any kind the district uses.
function pathData(geometry, proj) {
  const { type, coordinates: c } = geometry;
  if (type === "LineString") return [ringPath(c, proj, false), false];
  if (type === "MultiLineString") return [c.map((l) => ringPath(l, proj, false)).join(""), false];
  if (type === "Polygon") return [c.map((r) => ringPath(r, proj, true)).join(""), true];
  if (type === "MultiPolygon") return [c.flat().map((r) => ringPath(r, proj, true)).join(""), true];
  if (type === "GeometryCollection") {
    const parts = geometry.geometries.map((g) => pathData(g, proj));
    return [parts.map((p) => p[0]).join(""), parts.some((p) => p[1])];
  }
  return ["", false];
}

function areaLabels(svg, district, lang, proj) {
  for (const area of district.areas) {
    if (!area.label) continue;
    const [x, y] = proj.xy(area.label[0], area.label[1]);
    const text = svgEl("text", { x, y, class: "area-name", "text-anchor": "middle" });
    text.textContent = lang === "en" ? area.name_en : area.name_zh;
    svg.append(text);
  }
}

function drawDistrict(district, lang, laneWidth) {
  const proj = projection(district.bounds);
  const svg = svgEl("svg", {
    viewBox: `0 0 ${proj.width.toFixed(0)} ${proj.height.toFixed(0)}`,
    preserveAspectRatio: "xMidYMid meet",
  });
  for (const area of district.areas) {
    svg.append(svgEl("path", { d: pathData(area.geometry, proj)[0], class: "area", "vector-effect": "non-scaling-stroke" }));
  }
  // The chief's lane last, so it is drawn on top.
  const lanes = [...district.lanes].sort((a, b) => a.has_chief - b.has_chief);
  for (const lane of lanes) {
    const [d, isArea] = pathData(lane.geometry, proj);
    const path = svgEl("path", {
      d,
      class: `lane${isArea ? " polygon" : ""}${lane.has_chief ? " chief" : ""}`,
      "stroke-width": lane.has_chief ? laneWidth * 1.6 : laneWidth,
      "data-lane": lane.id,
    });
    const title = svgEl("title");
    title.textContent = `${lang === "en" ? lane.name_en : lane.name_zh} (${lane.id})`;
    path.append(title);
    svg.append(path);
  }
  return { svg, proj };
}

function pin(proj, lat, lon, size) {
  const [x, y] = proj.xy(lon, lat);
  // A drop shape whose tip is the point.
  return svgEl("path", {
    class: "pin",
    d: `M${x} ${y}l${-size * 0.6} ${-size}a${size * 0.6} ${size * 0.6} 0 1 1 ${size * 1.2} 0z`,
    "stroke-width": size * 0.12,
  });
}

// The panel's map: clicking anywhere sends that point.
export function drawPicker(district, lang, onPick) {
  const { svg, proj } = drawDistrict(district, lang, 9);
  areaLabels(svg, district, lang, proj);
  svg.addEventListener("click", (event) => {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const inSvg = point.matrixTransform(svg.getScreenCTM().inverse());
    const [lon, lat] = proj.lonlat(inSvg.x, inSvg.y);
    svg.append(pin(proj, lat, lon, 45));
    onPick(Number(lat.toFixed(6)), Number(lon.toFixed(6)));
  });
  return svg;
}

// A message's location: the district around it with a pin; zoomed in on the point.
export function drawPlace(district, location) {
  if (!district) return document.createTextNode("");
  const { svg, proj } = drawDistrict(district, "zh", 10);
  const [x, y] = proj.xy(location.lon, location.lat);
  const w = 700;
  const h = 400;
  svg.setAttribute("viewBox", `${(x - w / 2).toFixed(0)} ${(y - h / 2).toFixed(0)} ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid slice");
  svg.append(pin(proj, location.lat, location.lon, 40));
  return svg;
}

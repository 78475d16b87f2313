// A tiny SVG chart generator for the benchmark report: line charts (linear or log axes)
// and grouped bar charts. No dependencies; the output is a self-contained SVG document.

/** One line of a line chart. */
export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  /** A reference line (a bound, a minimum): drawn dashed, without markers. */
  readonly dashed?: boolean;
  /** Draw a dot at each point (default: yes, unless dashed). */
  readonly markers?: boolean;
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly xLog?: boolean;
  readonly yLog?: boolean;
  /** Lowest y shown (linear axes start at 0 unless told). */
  readonly yMin?: number;
  readonly width?: number;
  readonly height?: number;
}

/** One group of bars (one bar per category). */
export interface BarSeries {
  readonly name: string;
  readonly values: readonly number[];
}

/** Options of {@linkcode barChart}. */
export interface BarChartOptions {
  readonly title: string;
  readonly yLabel: string;
  readonly categories: readonly string[];
  readonly series: readonly BarSeries[];
  readonly yLog?: boolean;
  /** A horizontal reference line, such as 1× for ratios. */
  readonly reference?: { readonly value: number; readonly label: string };
  readonly width?: number;
  readonly height?: number;
}

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];
const FONT = `font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"`;
const MARGIN = { left: 72, right: 16, top: 40, bottom: 52 };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

function num(x: number): string {
  return (Math.round(x * 10) / 10).toString();
}

/** A short label for a tick value: 1.5k, 2M, 0.25. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return trim(v / 1e9) + "G";
  if (a >= 1e6) return trim(v / 1e6) + "M";
  if (a >= 1e4) return trim(v / 1e3) + "k";
  if (a >= 1 || a === 0) return trim(v);
  return Number(v.toPrecision(2)).toString();
}

function trim(v: number): string {
  return Number(v.toFixed(v >= 100 || v <= -100 ? 0 : 2)).toString();
}

interface Axis {
  readonly lo: number;
  readonly hi: number;
  readonly log: boolean;
  readonly ticks: number[];
}

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function axis(values: readonly number[], log: boolean, forcedMin?: number): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (finite.length === 0) return { lo: log ? 1 : 0, hi: log ? 10 : 1, log, ticks: [] };
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (log) {
    if (forcedMin !== undefined && forcedMin > 0) lo = Math.min(lo, forcedMin);
    let l = Math.floor(Math.log10(lo)), h = Math.ceil(Math.log10(hi));
    if (h === l) h = l + 1;
    const ticks: number[] = [];
    const decades = h - l;
    for (let e = l; e <= h; e++) {
      ticks.push(10 ** e);
      if (decades <= 2 && e < h) ticks.push(2 * 10 ** e, 5 * 10 ** e);
    }
    // Trim empty decades at the ends, but keep the data inside.
    while (l < h - 1 && 10 ** (l + 1) <= lo) l++;
    while (h > l + 1 && 10 ** (h - 1) >= hi) h--;
    return {
      lo: 10 ** l,
      hi: 10 ** h,
      log,
      ticks: ticks.filter((t) => t >= 10 ** l && t <= 10 ** h),
    };
  }
  lo = forcedMin ?? Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { lo, hi, log, ticks };
}

function scale(a: Axis, from: number, to: number): (v: number) => number {
  if (a.log) {
    const l = Math.log10(a.lo), h = Math.log10(a.hi);
    return (v) => from + (to - from) * (Math.log10(Math.max(v, a.lo)) - l) / (h - l);
  }
  return (v) => from + (to - from) * (v - a.lo) / (a.hi - a.lo);
}

function frame(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${
      width / 2
    }" y="22" text-anchor="middle" font-size="15" font-weight="600" fill="#111827">${
      esc(title)
    }</text>`,
    ...body,
    `</svg>`,
    "",
  ].join("\n");
}

function yAxis(
  body: string[],
  a: Axis,
  y: (v: number) => number,
  x0: number,
  x1: number,
  label: string,
  top: number,
  bottom: number,
): void {
  for (const t of a.ticks) {
    const py = num(y(t));
    body.push(
      `<line x1="${x0}" y1="${py}" x2="${x1}" y2="${py}" stroke="#e5e7eb"/>`,
      `<text x="${x0 - 6}" y="${py}" text-anchor="end" dominant-baseline="middle" fill="#374151">${
        formatTick(t)
      }</text>`,
    );
  }
  const cy = (top + bottom) / 2;
  body.push(
    `<text x="16" y="${cy}" text-anchor="middle" transform="rotate(-90 16 ${cy})" fill="#111827">${
      esc(label)
    }</text>`,
  );
}

function legendWidth(items: readonly { name: string }[]): number {
  return items.length ? Math.max(...items.map((i) => i.name.length)) * 6.6 + 40 : 0;
}

/** The legend, to the right of the plot area (never over the data). */
function legend(
  body: string[],
  items: readonly { name: string; dashed: boolean; bar?: boolean }[],
  x: number,
  y: number,
): void {
  const rowHeight = 18;
  items.forEach((item, i) => {
    const color = PALETTE[i % PALETTE.length];
    const ly = y + 8 + i * rowHeight;
    body.push(
      item.bar
        ? `<rect x="${x + 2}" y="${ly - 6}" width="14" height="12" fill="${color}"/>`
        : `<line x1="${x}" y1="${ly}" x2="${x + 18}" y2="${ly}" stroke="${color}" stroke-width="2"${
          item.dashed ? ` stroke-dasharray="5 3"` : ""
        }/>`,
      `<text x="${x + 24}" y="${ly}" dominant-baseline="middle" fill="#111827">${
        esc(item.name)
      }</text>`,
    );
  });
}

/** A line chart; returns the SVG text. */
export function lineChart(o: LineChartOptions): string {
  const items = o.series.map((s) => ({ name: s.name, dashed: s.dashed ?? false }));
  const plotWidth = o.width ?? 640, height = o.height ?? 360;
  const width = plotWidth + legendWidth(items);
  const x0 = MARGIN.left, x1 = plotWidth - MARGIN.right;
  const y0 = height - MARGIN.bottom, y1 = MARGIN.top;
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1]));
  const ax = axis(xs, o.xLog ?? false, o.xLog ? undefined : Math.min(...xs));
  const ay = axis(ys, o.yLog ?? false, o.yMin);
  const x = scale(ax, x0, x1), y = scale(ay, y0, y1);
  const body: string[] = [];
  yAxis(body, ay, y, x0, x1, o.yLabel, y1, y0);
  for (const t of ax.ticks) {
    const px = num(x(t));
    body.push(
      `<line x1="${px}" y1="${y1}" x2="${px}" y2="${y0}" stroke="#f3f4f6"/>`,
      `<text x="${px}" y="${y0 + 16}" text-anchor="middle" fill="#374151">${formatTick(t)}</text>`,
    );
  }
  body.push(
    `<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#6b7280"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#6b7280"/>`,
    `<text x="${(x0 + x1) / 2}" y="${height - 12}" text-anchor="middle" fill="#111827">${
      esc(o.xLabel)
    }</text>`,
  );
  o.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = s.points.filter(([px, py]) =>
      Number.isFinite(px) && Number.isFinite(py) && (!ax.log || px > 0) && (!ay.log || py > 0)
    );
    if (pts.length === 0) return;
    const d = pts.map(([px, py], j) => `${j ? "L" : "M"}${num(x(px))},${num(y(py))}`).join(" ");
    body.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${
        s.dashed ? ` stroke-dasharray="5 3"` : ""
      }/>`,
    );
    if (s.markers ?? !s.dashed) {
      for (const [px, py] of pts) {
        body.push(`<circle cx="${num(x(px))}" cy="${num(y(py))}" r="3" fill="${color}"/>`);
      }
    }
  });
  legend(body, items, x1 + 16, y1);
  return frame(width, height, o.title, body);
}

/** A grouped bar chart; returns the SVG text. */
export function barChart(o: BarChartOptions): string {
  const items = o.series.length > 1
    ? o.series.map((s) => ({ name: s.name, dashed: false, bar: true }))
    : [];
  const plotWidth = o.width ?? 640, height = o.height ?? 360;
  const width = plotWidth + legendWidth(items);
  const x0 = MARGIN.left, x1 = plotWidth - MARGIN.right;
  const y0 = height - MARGIN.bottom, y1 = MARGIN.top;
  const values = o.series.flatMap((s) => [...s.values]);
  if (o.reference) values.push(o.reference.value);
  const ay = axis(values, o.yLog ?? false);
  const y = scale(ay, y0, y1);
  const body: string[] = [];
  yAxis(body, ay, y, x0, x1, o.yLabel, y1, y0);
  const groupWidth = (x1 - x0) / Math.max(1, o.categories.length);
  const barWidth = groupWidth * 0.8 / Math.max(1, o.series.length);
  const base = ay.log ? y0 : y(0);
  o.categories.forEach((c, ci) => {
    const gx = x0 + ci * groupWidth;
    body.push(
      `<text x="${num(gx + groupWidth / 2)}" y="${y0 + 16}" text-anchor="middle" fill="#374151">${
        esc(c)
      }</text>`,
    );
    o.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === undefined || !Number.isFinite(v) || (ay.log && v <= 0)) return;
      const bx = gx + groupWidth * 0.1 + si * barWidth;
      const by = y(v);
      body.push(
        `<rect x="${num(bx)}" y="${num(Math.min(by, base))}" width="${num(barWidth - 2)}" height="${
          num(Math.abs(base - by))
        }" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(s.name)} · ${esc(c)}: ${
          formatTick(v)
        }</title></rect>`,
      );
    });
  });
  body.push(
    `<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#6b7280"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#6b7280"/>`,
  );
  if (o.reference) {
    const ry = num(y(o.reference.value));
    body.push(
      `<line x1="${x0}" y1="${ry}" x2="${x1}" y2="${ry}" stroke="#111827" stroke-dasharray="4 3"/>`,
      `<text x="${x1 - 4}" y="${Number(ry) - 4}" text-anchor="end" fill="#111827">${
        esc(o.reference.label)
      }</text>`,
    );
  }
  legend(body, items, x1 + 16, y1);
  return frame(width, height, o.title, body);
}

/**
 * A comparison as one self-contained HTML page: the verdict, the rules, a table per task, a forest plot
 * of every metric's difference with its interval, and (for nightly reports) trend plots. Inline CSS and
 * SVG only: no scripts, fonts or images from anywhere, so the file opens offline and can be mailed.
 */
import type { Comparison, MetricComparison, TaskComparison } from './compare.js';
import { fixed as num, pValueText, signed } from './format.js';

/** One metric's values over a series of runs (oldest first), for trend plots. */
export interface TrendSeries {
  metric: string;
  points: Array<{ label: string; value: number; verdict?: string }>;
}

export interface HtmlReportOptions {
  title?: string;
  trends?: TrendSeries[];
  /** When the report was written (shown in the header). */
  generatedAt?: string;
}

const VERDICT_COLOURS: Record<string, string> = {
  pass: '#1a7f37',
  regression: '#cf222e',
  incomplete: '#9a6700',
  improvement: '#0969da',
  unchanged: '#57606a',
  not_compared: '#8c959f',
  no_baseline: '#8c959f',
};

export function renderComparisonHtml(comparison: Comparison, opts: HtmlReportOptions = {}): string {
  const title = opts.title ?? `evalflow compare: ${comparison.a.label} → ${comparison.b.label}`;
  const { rules, summary } = comparison;
  const compared = comparison.tasks.flatMap((t) => t.metrics.filter((m) => m.delta !== null).map((m) => ({ task: t, metric: m })));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; max-width: 1100px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff; font-weight: 600; text-transform: uppercase; font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0; } th, td { padding: 4px 10px; border-bottom: 1px solid #d0d7de; text-align: right; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
.muted { color: #57606a; } .notes { color: #57606a; font-size: 13px; margin: 4px 0; }
svg { display: block; margin: 8px 0; } svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p>Verdict ${badge(comparison.verdict)} · ${summary.tasks} task(s), ${summary.regressions} regression(s), ${summary.improvements} with improvements, ${summary.incomplete} incomplete${opts.generatedAt ? ` · ${esc(opts.generatedAt)}` : ''}</p>
<table>
<tr><th></th><th>run</th><th>directory</th><th>state</th></tr>
<tr><td>A (baseline)</td><td>${esc(comparison.a.label)}</td><td>${esc(comparison.a.runDir)}</td><td>${esc(comparison.a.state ?? '-')}</td></tr>
<tr><td>B (candidate)</td><td>${esc(comparison.b.label)}</td><td>${esc(comparison.b.runDir)}</td><td>${esc(comparison.b.state ?? '-')}</td></tr>
</table>
<p class="muted">Rules: a gated metric (${rules.gate.map(esc).join(', ')}) regresses when it drops by at least ${rules.min_drop} and its paired test gives p &lt; ${rules.alpha}; intervals are ${Math.round(rules.confidence * 100)}% paired bootstrap intervals (${rules.bootstrap_resamples} resamples, seed ${rules.seed}).</p>
${compared.length > 0 ? `<h2>Differences (B − A) with ${Math.round(rules.confidence * 100)}% intervals</h2>\n${forestPlot(compared, rules.min_drop)}` : ''}
${(opts.trends ?? []).length > 0 ? `<h2>Trends</h2>\n${(opts.trends ?? []).map(trendPlot).join('\n')}` : ''}
<h2>Tasks</h2>
${comparison.tasks.map(taskSection).join('\n')}
</body>
</html>
`;
}

function taskSection(task: TaskComparison): string {
  const pairing = task.pairing ? ` · ${task.pairing.paired} paired samples` : '';
  const rows = task.metrics
    .map(
      (m) => `<tr><td>${esc(m.metric)}${m.gated ? '' : ' <span class="muted">(not gated)</span>'}</td><td>${num(m.a)}</td><td>${num(m.b)}</td><td>${signed(m.delta)}</td><td>${m.interval ? `[${signed(m.interval.low)}, ${signed(m.interval.high)}]` : '-'}</td><td>${pValueText(m.pValue)}</td><td>${esc(m.test ?? '-')}</td><td>${badge(m.verdict)}</td></tr>`,
    )
    .join('\n');
  return `<h3>${esc(task.job)}${task.task ? ` <span class="muted">${esc(task.task)}</span>` : ''} ${badge(task.verdict)}</h3>
<p class="notes">A: ${esc(task.a.state)}${samplesText(task.a.samples)} · B: ${esc(task.b.state)}${samplesText(task.b.samples)}${pairing}</p>
<table><tr><th>metric</th><th>A</th><th>B</th><th>Δ</th><th>interval</th><th>p</th><th>test</th><th>verdict</th></tr>
${rows}
</table>
${task.notes.map((n) => `<p class="notes">${esc(n)}</p>`).join('\n')}`;
}

function samplesText(samples: TaskComparison['a']['samples']): string {
  return samples ? ` (${samples.scored}/${samples.total} scored${samples.errors ? `, ${samples.errors} errors` : ''})` : '';
}

/** Every compared metric as a row: the difference as a dot, its interval as a bar, 0 and ±min_drop as lines. */
function forestPlot(rows: Array<{ task: TaskComparison; metric: MetricComparison }>, minDrop: number): string {
  const rowHeight = 26;
  const labelWidth = 300;
  const plotWidth = 520;
  const top = 24;
  const height = top + rows.length * rowHeight + 28;
  const width = labelWidth + plotWidth + 20;
  let extent = minDrop * 1.5;
  for (const { metric } of rows) {
    for (const v of [metric.delta, metric.interval?.low, metric.interval?.high]) if (v != null) extent = Math.max(extent, Math.abs(v));
  }
  extent = extent === 0 ? 1 : extent * 1.1;
  const x = (v: number) => labelWidth + ((v + extent) / (2 * extent)) * plotWidth;
  const bottom = top + rows.length * rowHeight;
  const parts: string[] = [];
  parts.push(`<line x1="${x(0)}" y1="${top - 8}" x2="${x(0)}" y2="${bottom}" stroke="#57606a" />`);
  for (const edge of [-minDrop, minDrop]) {
    if (minDrop > 0) parts.push(`<line x1="${x(edge)}" y1="${top - 8}" x2="${x(edge)}" y2="${bottom}" stroke="#cf222e" stroke-dasharray="4 3" opacity="0.6" />`);
  }
  for (const tick of [-extent / 1.1, 0, extent / 1.1]) {
    parts.push(`<text x="${x(tick)}" y="${bottom + 18}" text-anchor="middle">${signed(tick)}</text>`);
  }
  rows.forEach(({ task, metric }, i) => {
    const y = top + i * rowHeight + rowHeight / 2;
    const colour = VERDICT_COLOURS[metric.verdict] ?? '#57606a';
    parts.push(`<text x="${labelWidth - 10}" y="${y + 4}" text-anchor="end">${esc(`${task.job} ${metric.metric}`)}</text>`);
    if (metric.interval) {
      parts.push(`<line class="interval" x1="${x(metric.interval.low)}" y1="${y}" x2="${x(metric.interval.high)}" y2="${y}" stroke="${colour}" stroke-width="3" />`);
    }
    parts.push(`<circle class="delta" cx="${x(metric.delta ?? 0)}" cy="${y}" r="5" fill="${colour}"><title>${esc(`${metric.metric}: Δ ${signed(metric.delta)}, ${metric.verdict}`)}</title></circle>`);
  });
  return `<svg class="forest" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="differences with intervals">
${parts.join('\n')}
</svg>`;
}

/** A metric over the runs of a series (oldest left), regressions marked red. */
function trendPlot(series: TrendSeries): string {
  const width = 560;
  const height = 180;
  const left = 50;
  const right = 20;
  const top = 24;
  const bottom = 36;
  const values = series.points.map((p) => p.value);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) {
    lo -= 0.05;
    hi += 0.05;
  }
  const pad = (hi - lo) * 0.1;
  lo -= pad;
  hi += pad;
  const n = series.points.length;
  const x = (i: number) => left + (n === 1 ? (width - left - right) / 2 : (i / (n - 1)) * (width - left - right));
  const y = (v: number) => top + (1 - (v - lo) / (hi - lo)) * (height - top - bottom);
  const path = series.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  const dots = series.points
    .map((p, i) => {
      const colour = VERDICT_COLOURS[p.verdict ?? 'unchanged'] ?? '#57606a';
      return `<circle class="point" cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="4" fill="${colour}"><title>${esc(`${p.label}: ${num(p.value)}${p.verdict ? ` (${p.verdict})` : ''}`)}</title></circle>`;
    })
    .join('\n');
  // Labels far enough apart not to overlap (at 11 px a character is at most ~6.6 px wide; a first or last label grows
  // inwards from its point, so neighbours need 1.5 label widths), the last always, none crowding it; the first and last
  // grow inwards so that neither is cut off at the plot's edges.
  const labelWidth = 6.6 * Math.max(...series.points.map((p) => p.label.length));
  const pointSpacing = n === 1 ? Infinity : (width - left - right) / (n - 1);
  const step = Math.max(1, Math.ceil((1.5 * labelWidth + 8) / pointSpacing));
  const labelled = (i: number) => i === n - 1 || (i % step === 0 && n - 1 - i >= step);
  const anchor = (i: number) => (n === 1 ? 'middle' : i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle');
  const labels = series.points
    .map((p, i) => (labelled(i) ? `<text class="tick" x="${x(i).toFixed(1)}" y="${height - 12}" font-size="11" text-anchor="${anchor(i)}">${esc(p.label)}</text>` : ''))
    .join('');
  return `<svg class="trend" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(series.metric)} over time">
<text x="${left}" y="14">${esc(series.metric)}</text>
<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#d0d7de" />
<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#d0d7de" />
<text x="${left - 6}" y="${y(hi - pad) + 4}" text-anchor="end">${num(hi - pad)}</text>
<text x="${left - 6}" y="${y(lo + pad) + 4}" text-anchor="end">${num(lo + pad)}</text>
<path class="line" d="${path}" fill="none" stroke="#0969da" stroke-width="2" />
${dots}
${labels}
</svg>`;
}

function badge(verdict: string): string {
  return `<span class="badge" style="background:${VERDICT_COLOURS[verdict] ?? '#57606a'}">${esc(verdict.replace('_', ' '))}</span>`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

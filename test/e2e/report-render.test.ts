/**
 * The HTML report in a real browser: headless Chromium (Debian `chromium`) opens a comparison report
 * with trend plots, reports no console errors or failed loads, and every plot element has a size on
 * screen. Mandatory under EVALFLOW_E2E=1 (CI installs chromium); elsewhere it runs where chromium is.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareRuns, runFromDir } from '../../compare/compare.js';
import { renderComparisonHtml } from '../../compare/report-html.js';
import { GateRulesSchema } from '../../compare/rules.js';
import { chromiumPath, renderPage } from '../support/chromium.js';
import { writeRun } from '../support/run-dirs.js';
import { tempDir } from '../support/run-helpers.js';

const mandatory = process.env.EVALFLOW_E2E === '1';

describe.runIf(mandatory || chromiumPath() !== null)('report.html in headless Chromium', () => {
  it('renders without console errors, with non-empty forest and trend plots', async () => {
    const root = tempDir();
    const ones = (n: number) => Array.from({ length: n }, () => 1);
    const a = runFromDir(writeRun(root, 'a', { 'gsm8k.0': { task: 'gsm8k', scores: ones(50) }, 'mmlu.1': { task: 'mmlu', scores: ones(30).map((_, i) => i % 3 ? 1 : 0) } }));
    const b = runFromDir(
      writeRun(root, 'b', { 'gsm8k.0': { task: 'gsm8k', scores: ones(50).map((_, i) => (i < 12 ? 0 : 1)) }, 'mmlu.1': { task: 'mmlu', scores: ones(30).map((_, i) => i % 3 ? 1 : 0) } }),
    );
    const comparison = await compareRuns(a, b, GateRulesSchema.parse({}));
    const html = renderComparisonHtml(comparison, {
      title: 'Nightly <regression> & "report"',
      trends: [
        // 14 nights (trend_nights' default), labelled as the nightly gate labels them.
        { metric: 'gsm8k_accuracy', points: Array.from({ length: 14 }, (_, i) => ({ label: `2026-11-${String(17 + i).padStart(2, '0')} 02:00`, value: i < 13 ? 1 : 0.76, verdict: i < 13 ? 'pass' : 'regression' })) },
        { metric: 'mmlu_accuracy', points: [{ label: '11-29', value: 0.66 }, { label: '11-30', value: 0.66 }] },
      ],
    });
    const file = join(root, 'report.html');
    writeFileSync(file, html);
    const measure = `(() => {
      const boxes = (selector) => [...document.querySelectorAll(selector)].map((e) => { const r = e.getBoundingClientRect(); return [r.width, r.height]; });
      return {
        title: document.title,
        forest: boxes('svg.forest'), deltas: boxes('svg.forest circle.delta'), intervals: boxes('svg.forest line.interval'),
        trends: boxes('svg.trend'), lines: boxes('svg.trend path.line'), points: boxes('svg.trend circle.point'),
        rows: document.querySelectorAll('table tr').length,
        // Axis labels: each inside its plot, none overlapping the next.
        ticks: [...document.querySelectorAll('svg.trend')].map((svg) => {
          const plot = svg.getBoundingClientRect();
          const boxes = [...svg.querySelectorAll('text.tick')].map((t) => t.getBoundingClientRect());
          return {
            count: boxes.length,
            inside: boxes.every((r) => r.width > 0 && r.left >= plot.left - 0.5 && r.right <= plot.right + 0.5),
            apart: boxes.every((r, i) => i === 0 || r.left >= boxes[i - 1].right),
          };
        }),
      };
    })()`;
    const page = await renderPage(file, measure, process.env.EVALFLOW_REPORT_SCREENSHOT ?? join(root, 'report.png'));
    expect(page.errors).toEqual([]);
    type Boxes = Array<[number, number]>;
    const m = page.measured as {
      title: string; rows: number; forest: Boxes; deltas: Boxes; intervals: Boxes; trends: Boxes; lines: Boxes; points: Boxes;
      ticks: Array<{ count: number; inside: boolean; apart: boolean }>;
    };
    expect(m.title).toBe('Nightly <regression> & "report"');
    expect(m.forest).toHaveLength(1);
    expect(m.deltas).toHaveLength(2);
    expect(m.intervals.length).toBeGreaterThanOrEqual(1);
    expect(m.trends).toHaveLength(2);
    expect(m.points).toHaveLength(16);
    expect(m.ticks).toEqual([{ count: 3, inside: true, apart: true }, { count: 2, inside: true, apart: true }]);
    for (const [w, h] of [...m.forest, ...m.deltas, ...m.trends, ...m.points]) {
      expect(w).toBeGreaterThan(0);
      expect(h).toBeGreaterThan(0);
    }
    // Trend lines span the plot (a flat series has no height).
    for (const [w] of m.lines) expect(w).toBeGreaterThan(100);
    // The regression's interval is a visible bar; the unchanged task's interval is a point (zero width).
    expect(Math.max(...m.intervals.map(([w]) => w))).toBeGreaterThan(5);
    expect(m.rows).toBeGreaterThan(4);
  });
});

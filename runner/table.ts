/** Plain aligned text, Markdown (for pull-request comments) or CSV, from one row model. */
export type TableFormat = 'text' | 'md' | 'csv';

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], format: TableFormat = 'text'): string {
  if (format === 'csv') return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n');
  if (format === 'md') {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    return [`| ${header.map(esc).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
  }
  const width = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => c + ' '.repeat(width[i]! - visible(c)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Length as shown in a terminal: ANSI colour codes take no room. */
function visible(s: string): number {
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

function csvCell(s: string): string {
  const plain = s.replace(/\x1b\[[0-9;]*m/g, '');
  return /[",\n]/.test(plain) ? `"${plain.replace(/"/g, '""')}"` : plain;
}

/** A numeric change with its sign: `+0.25`, `-1`, `0`. */
export function formatChange(change: number | undefined): string {
  if (change === undefined) return '-';
  return `${change > 0 ? '+' : ''}${formatValue(change)}`;
}

export function formatValue(v: unknown): string {
  if (v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

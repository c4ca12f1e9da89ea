/**
 * Progress on stderr for the CLI: a cli-progress bar where stderr is a terminal, and nothing
 * where it is not (logs say what happened instead). The library itself never prints.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  start(total: number, payload?: Record<string, unknown>): void;
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

export function progressBar(format: string, enabled = Boolean(process.stderr.isTTY)): Progress {
  if (!enabled) return { start() {}, update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    format: format.replace('{eta_formatted}', '{eta_left}'),
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  // advkit's own ETA: from the elapsed time per unit done since the start (cli-progress' shows
  // NaN before the first update and swings on a few slow batches), '--' until something is done.
  let t0 = 0;
  let total = 0;
  const eta = (value: number) => {
    if (value <= 0 || value >= total) return value >= total ? '0s' : '--';
    const s = Math.round(((performance.now() - t0) / 1000) * ((total - value) / value));
    return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
  };
  return {
    start: (n, payload) => { t0 = performance.now(); total = n; bar.start(n, 0, { ...payload, eta_left: '--' }); },
    update: (value, payload) => bar.update(value, { ...payload, eta_left: eta(value) }),
    stop: () => bar.stop(),
  };
}

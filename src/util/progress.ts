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
    format,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  return {
    start: (total, payload) => bar.start(total, 0, payload),
    update: (value, payload) => bar.update(value, payload),
    stop: () => bar.stop(),
  };
}

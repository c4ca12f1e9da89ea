/** Text for a terminal: no escape sequence (colours, cursor moves, titles) and no control character but none at all. */
// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)|[@-Z\\-_])/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** `s` safe to print on a terminal (newlines kept: a caller writes lines). */
export function escTerm(s: string): string {
  return String(s).replace(ESCAPES, '').replace(CONTROL, '');
}

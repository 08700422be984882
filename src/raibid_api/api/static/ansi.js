// ANSI SGR colours of a log line, as text segments with classes: never markup.
// Other escape sequences (cursor moves, erase, OSC titles and links) are dropped, and a carriage
// return keeps only what was drawn after it, as a terminal would show a progress line.

// CSI ... final byte, OSC ... BEL or ST, and two-byte escapes
const ESCAPE = /\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
// C0 controls other than tab, and DEL
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;
const CUBE = [0, 95, 135, 175, 215, 255];

function color256(n) {
  if (n < 16) return n;
  if (n < 232) {
    const i = n - 16;
    return `rgb(${CUBE[Math.floor(i / 36)]},${CUBE[Math.floor(i / 6) % 6]},${CUBE[i % 6]})`;
  }
  const grey = 8 + (n - 232) * 10;
  return `rgb(${grey},${grey},${grey})`;
}

function extendedColor(codes, i) {
  // 38;5;n or 38;2;r;g;b (also with colons): [colour, codes consumed after the 38/48]
  if (codes[i + 1] === 5 && codes.length > i + 2) return [color256(codes[i + 2] & 255), 2];
  if (codes[i + 1] === 2 && codes.length > i + 4) {
    const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.min(255, v));
    return [`rgb(${r},${g},${b})`, 4];
  }
  return [null, codes.length - i];
}

function applySgr(state, params) {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => Number(p) || 0);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(state, { bold: false, dim: false, italic: false, underline: false,
                                        inverse: false, fg: null, bg: null });
    else if (c === 1) state.bold = true;
    else if (c === 2) state.dim = true;
    else if (c === 3) state.italic = true;
    else if (c === 4) state.underline = true;
    else if (c === 7) state.inverse = true;
    else if (c === 22) state.bold = state.dim = false;
    else if (c === 23) state.italic = false;
    else if (c === 24) state.underline = false;
    else if (c === 27) state.inverse = false;
    else if (c >= 30 && c <= 37) state.fg = c - 30;
    else if (c >= 90 && c <= 97) state.fg = c - 90 + 8;
    else if (c === 39) state.fg = null;
    else if (c >= 40 && c <= 47) state.bg = c - 40;
    else if (c >= 100 && c <= 107) state.bg = c - 100 + 8;
    else if (c === 49) state.bg = null;
    else if (c === 38 || c === 48) {
      const [colour, used] = extendedColor(codes, i);
      if (c === 38) state.fg = colour;
      else state.bg = colour;
      i += used;
    }
  }
}

/** The visible text of a line after carriage returns: what follows the last one. */
function afterCarriageReturns(line) {
  const trimmed = line.endsWith("\r") ? line.slice(0, -1) : line;
  const cut = trimmed.lastIndexOf("\r");
  return cut < 0 ? trimmed : trimmed.slice(cut + 1);
}

/** The segments of a line: [{text, bold, dim, italic, underline, inverse, fg, bg}]. */
export function parseAnsi(line) {
  const text = afterCarriageReturns(line);
  const segments = [];
  const state = { bold: false, dim: false, italic: false, underline: false, inverse: false,
                  fg: null, bg: null };
  let at = 0;
  const push = (chunk) => {
    const clean = chunk.replace(CONTROL, "");
    if (clean) segments.push({ ...state, text: clean });
  };
  if (!text.includes("\x1b")) {
    push(text);
    return segments;
  }
  for (const match of text.matchAll(ESCAPE)) {
    push(text.slice(at, match.index));
    at = match.index + match[0].length;
    if (match[2] === "m") applySgr(state, match[1]);
  }
  push(text.slice(at));
  return segments;
}

/** The plain text of a line, as a terminal shows it (no escapes). */
export function plainText(line) {
  return parseAnsi(line).map((s) => s.text).join("");
}

/** Fill ``target`` with the line's segments as spans (text nodes only). */
export function renderAnsi(target, line) {
  const nodes = [];
  for (const s of parseAnsi(line)) {
    let fg = s.fg;
    let bg = s.bg;
    if (s.inverse) [fg, bg] = [bg === null ? "inv-fg" : bg, fg === null ? "inv-bg" : fg];
    const plain = !s.bold && !s.dim && !s.italic && !s.underline && fg === null && bg === null;
    if (plain) {
      nodes.push(document.createTextNode(s.text));
      continue;
    }
    const span = document.createElement("span");
    const classes = [];
    if (s.bold) classes.push("sgr-b");
    if (s.dim) classes.push("sgr-d");
    if (s.italic) classes.push("sgr-i");
    if (s.underline) classes.push("sgr-u");
    if (typeof fg === "number") classes.push(`fg${fg}`);
    else if (fg === "inv-fg") classes.push("fg-inv");
    else if (fg) span.style.color = fg;
    if (typeof bg === "number") classes.push(`bg${bg}`);
    else if (bg === "inv-bg") classes.push("bg-inv");
    else if (bg) span.style.backgroundColor = bg;
    span.className = classes.join(" ");
    span.textContent = s.text;
    nodes.push(span);
  }
  target.replaceChildren(...nodes);
}

// A log of any length, fast: only the lines in view (and a few around) are in the document.
// Every line has the same height, so the line at a scroll position is a division away; a spacer
// as tall as all the lines gives the scroll bar its range. Each row is placed on its own, so
// scrolling moves the rows already drawn as they are and paints only the rows that come in.

import { renderAnsi } from "./ansi.js";
import { el } from "./format.js";

const OVERSCAN = 20;

export class LogView {
  /** @param {(n: number) => void} onSelect called when a line number is chosen */
  constructor(onSelect) {
    this.lines = []; // {n, text, stderr} or {gap: dropped}
    this.byNumber = new Map(); // line number -> index in this.lines
    this.follow = true;
    this.selected = null;
    this.onSelect = onSelect;
    this.onRender = () => {};
    this.frame = 0;
    this.drawnTotal = -1;
    this.pool = [];
    this.firstLineShown = false;
    this.rows = el("div", { class: "log-rows" });
    this.spacer = el("div", { class: "log-spacer" }, this.rows);
    this.element = el("div", {
      class: "log", tabindex: "0", role: "region", "aria-label": "Log",
      "data-testid": "log",
    }, this.spacer);
    this.lineHeight = 0;
    this.element.addEventListener("scroll", () => this.onScroll(), { passive: true });
    this.element.addEventListener("click", (event) => this.onClick(event));
    new ResizeObserver(() => this.schedule()).observe(this.element);
  }

  /** How many log lines it holds (markers of dropped lines not counted). */
  get count() {
    return this.byNumber.size;
  }

  /** A log line; ``n`` is its number in the job's log. */
  append(n, text, stream) {
    if (this.byNumber.has(n)) return; // never twice, whatever the stream sent
    this.byNumber.set(n, this.lines.length);
    this.lines.push({ n, text, stderr: stream === "stderr" });
    this.schedule();
  }

  /** A marker where lines were dropped (``dropped`` of them, or an unknown number). */
  appendGap(dropped) {
    this.lines.push({ gap: dropped });
    this.schedule();
  }

  /** Scroll to line ``n`` and mark it (a `#L<n>` link); false while it has not arrived. */
  reveal(n) {
    const index = this.byNumber.get(n);
    if (index === undefined) return false;
    this.selected = n;
    this.follow = false;
    this.measure();
    const target = index * this.lineHeight - this.element.clientHeight / 3;
    this.element.scrollTop = Math.max(0, target);
    this.render();
    return true;
  }

  setFollow(follow) {
    this.follow = follow;
    if (follow) {
      this.element.scrollTop = this.lines.length * this.lineHeight;
      this.schedule();
    }
    this.element.dispatchEvent(new Event("follow"));
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  measure() {
    if (this.lineHeight) return;
    const probe = this.makeRow();
    this.rows.append(probe.row);
    this.lineHeight = probe.row.getBoundingClientRect().height || 20;
    probe.row.remove();
  }

  onScroll() {
    const e = this.element;
    const atBottom = e.scrollTop + e.clientHeight >= e.scrollHeight - this.lineHeight;
    if (atBottom !== this.follow) this.setFollow(atBottom);
    this.schedule();
  }

  onClick(event) {
    const link = event.target.closest("a.ln");
    if (!link) return;
    event.preventDefault();
    const n = Number(link.dataset.n);
    this.selected = n;
    this.onSelect(n);
    this.render();
  }

  makeRow() {
    const number = el("a", { class: "ln" });
    const text = el("span", { class: "lt" });
    return { row: el("div", { class: "line" }, number, text), number, text, index: -1 };
  }

  fill(slot, index) {
    const line = this.lines[index];
    if (slot.index !== index) {
      // each row sits at its own place: a row that stays in view is not painted again
      slot.row.style.transform = `translateY(${index * this.lineHeight}px)`;
    }
    slot.index = index;
    if (line.gap !== undefined) {
      slot.row.className = "line gap";
      slot.number.removeAttribute("href");
      slot.number.textContent = "";
      slot.text.textContent = line.gap === null
        ? "[… some lines were dropped here …]"
        : `[… ${line.gap} lines dropped …]`;
      return;
    }
    slot.row.className = `line${line.stderr ? " stderr" : ""}${line.n === this.selected ? " selected" : ""}`;
    slot.number.textContent = String(line.n);
    slot.number.href = `#L${line.n}`;
    slot.number.dataset.n = String(line.n);
    renderAnsi(slot.text, line.text);
  }

  render() {
    this.measure();
    const e = this.element;
    const h = this.lineHeight;
    const total = this.lines.length;
    if (total !== this.drawnTotal) {
      // only when lines arrived: the height, and the end when following it
      this.drawnTotal = total;
      this.spacer.style.height = `${total * h}px`;
      if (this.follow) e.scrollTop = total * h;
    }
    const first = Math.max(0, Math.floor(e.scrollTop / h) - OVERSCAN);
    const last = Math.min(total, Math.ceil((e.scrollTop + e.clientHeight) / h) + OVERSCAN);
    const wanted = last - first;
    while (this.pool.length < wanted) {
      const slot = this.makeRow();
      this.pool.push(slot);
      this.rows.append(slot.row);
    }
    while (this.pool.length > wanted) this.pool.pop().row.remove();
    // a slot keeps its line while it stays in view: only new lines are drawn
    const byIndex = new Map(this.pool.map((slot) => [slot.index, slot]));
    const free = this.pool.filter((slot) => slot.index < first || slot.index >= last);
    const ordered = [];
    for (let i = first; i < last; i++) {
      let slot = byIndex.get(i);
      if (!slot || slot.index < first || slot.index >= last) {
        slot = free.pop();
        this.fill(slot, i);
      } else if (this.lines[i].n === this.selected || slot.row.classList.contains("selected")) {
        this.fill(slot, i);
      }
      ordered.push(slot);
    }
    // keep document order equal to line order (keyboard and screen reader order)
    ordered.forEach((slot, k) => {
      if (this.rows.children[k] !== slot.row) this.rows.insertBefore(slot.row, this.rows.children[k] || null);
    });
    this.pool = ordered;
    this.onRender();
    if (total && !this.firstLineShown) {
      this.firstLineShown = true;
      performance.mark("raibid:first-line");
    }
  }
}

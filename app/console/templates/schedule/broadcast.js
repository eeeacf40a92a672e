// The rundown: drag and drop, or Alt + arrow keys on a focused item, reorder it; the total
// and its bar follow live. "Lưu thứ tự" posts the order (the hidden inputs, in list order).
// Without this script the ↑ ↓ ✕ buttons do the same through the server.
(function () {
  "use strict";
  var list = document.getElementById("rundown-list");
  var box = document.getElementById("band");
  if (!list || !box) { return; }
  var hint = document.getElementById("reorder-hint");
  if (hint) { hint.hidden = false; }
  var low = +box.dataset.low, high = +box.dataset.high, gap = +box.dataset.gap, scale = +box.dataset.scale;
  var bar = box.querySelector(".band-total");
  var text = box.querySelector(".band-total-text");
  var saveButton = document.getElementById("save-order");
  var dragged = null;

  function mmss(ms) {
    var s = Math.round(ms / 1000);
    var m = Math.floor(s / 60);
    s = s % 60;
    return (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }

  function items() { return Array.prototype.slice.call(list.children); }
  function movable() { return items().filter(function (li) { return li.classList.contains("rundown-item"); }); }

  function refresh(changed) {
    var all = items();
    var total = 0;
    all.forEach(function (li) { total += +(li.dataset.ms || 0); });
    if (all.length > 1) { total += (all.length - 1) * gap; }
    var ok = total >= low && total <= high;
    bar.setAttribute("width", String(Math.min(1000, Math.floor(total * 1000 / scale))));
    bar.setAttribute("class", "band-total " + (ok ? "ok" : "off"));
    text.textContent = mmss(total);
    var segs = movable();
    segs.forEach(function (li, i) {
      var up = li.querySelector('button[value^="up:"]');
      var down = li.querySelector('button[value^="down:"]');
      if (up) { up.disabled = i === 0; }
      if (down) { down.disabled = i === segs.length - 1; }
    });
    if (changed && saveButton) { saveButton.classList.remove("btn-secondary"); }
  }

  // Intro and outro stay first and last: a segment moves only among segments.
  function place(li, target, after) {
    if (!target || target === li || !target.classList.contains("rundown-item")) { return; }
    list.insertBefore(li, after ? target.nextSibling : target);
    refresh(true);
  }

  movable().forEach(function (li) {
    li.addEventListener("dragstart", function (e) {
      dragged = li;
      li.classList.add("dragging");
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", "");
    });
    li.addEventListener("dragend", function () { li.classList.remove("dragging"); dragged = null; });
    li.addEventListener("dragover", function (e) { if (dragged) { e.preventDefault(); } });
    li.addEventListener("drop", function (e) {
      e.preventDefault();
      if (!dragged) { return; }
      var rect = li.getBoundingClientRect();
      place(dragged, li, e.clientY > rect.top + rect.height / 2);
    });
    li.addEventListener("keydown", function (e) {
      if (!e.altKey || e.target !== li) { return; }
      if (e.key === "ArrowUp") { e.preventDefault(); place(li, li.previousElementSibling, false); li.focus(); }
      if (e.key === "ArrowDown") { e.preventDefault(); place(li, li.nextElementSibling, true); li.focus(); }
    });
  });
  refresh(false);
})();

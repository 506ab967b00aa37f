// cooperbench report: sort the pair table by a header click, filter it by text and selects. Own code, no library.
(function () {
  var table = document.getElementById("pairs");
  if (!table) return;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById("filter-text");
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-column]"));
  var count = document.getElementById("shown-count");

  function cell(row, i) {
    var c = row.cells[i];
    return c.hasAttribute("data-value") ? c.getAttribute("data-value") : c.textContent.trim();
  }

  function filter() {
    var needle = (text.value || "").toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var ok = !needle || row.textContent.toLowerCase().indexOf(needle) >= 0;
      selects.forEach(function (s) {
        if (s.value && cell(row, Number(s.getAttribute("data-column"))) !== s.value) ok = false;
      });
      row.hidden = !ok;
      if (ok) shown++;
    });
    count.textContent = String(shown);
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    th.classList.add("sortable");
    th.addEventListener("click", function () {
      var dir = th.getAttribute("data-dir") === "asc" ? "desc" : "asc";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.removeAttribute("data-dir"); });
      th.setAttribute("data-dir", dir);
      var sign = dir === "asc" ? 1 : -1;
      rows.sort(function (a, b) {
        var x = cell(a, i), y = cell(b, i);
        var nx = parseFloat(x), ny = parseFloat(y);
        if (!isNaN(nx) && !isNaN(ny)) return sign * (nx - ny);
        return sign * x.localeCompare(y);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  text.addEventListener("input", filter);
  selects.forEach(function (s) { s.addEventListener("change", filter); });
  filter();
})();

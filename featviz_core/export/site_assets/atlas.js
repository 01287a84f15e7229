// featviz static atlas: keyboard navigation only (left/right: previous/next, up: the page above).
// The pages work without it; it reads the <link rel> elements each page declares.
document.addEventListener("keydown", function (event) {
  if (event.altKey || event.ctrlKey || event.metaKey || event.target.closest("input, textarea")) return;
  var rel = { ArrowLeft: "prev", ArrowRight: "next", ArrowUp: "up" }[event.key];
  var link = rel && document.querySelector('link[rel="' + rel + '"]');
  if (link) window.location.href = link.href;
});

// The print templates' "Print" button (no inline scripts: the pages' CSP forbids them).
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) {
    window.print();
  }
});

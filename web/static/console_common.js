// What the operator console's scripts share: one namespace, window.HetangConsole.
// console.html loads, deferred and in this order: console_common.js (the helpers), wall.js (which
// adds HetangConsole.wall), broadcaster.js (which uses it). No build step.
"use strict";
(function () {
  // "{name}" in a translated sentence (the data-* words of the template) becomes values.name;
  // a name without a value stays as it is.
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  window.HetangConsole = {
    fill: fill,
    element: element,
    wall: null,  // wall.js: {api, reread, rereadSoon, onRead}
  };
})();

// The member import form, sent with progress: the upload's share while the file travels, then
// the seconds the server has been checking and writing (it answers when all rows are in or none).
// Without this script the form posts as usual.
"use strict";
(function () {
  const form = document.querySelector("form[data-import-progress]");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  const box = form.querySelector("[data-progress]");
  const bar = box.querySelector("progress");
  const text = box.querySelector("[data-progress-text]");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const request = new XMLHttpRequest();
    const started = Date.now();
    let timer = null;
    box.hidden = false;
    button.disabled = true;
    request.upload.addEventListener("progress", function (step) {
      if (!step.lengthComputable) return;
      bar.max = step.total;
      bar.value = step.loaded;
      const pct = Math.floor((100 * step.loaded) / step.total);
      text.textContent = box.dataset.uploading + " " + pct + "%";
    });
    request.upload.addEventListener("load", function () {
      bar.removeAttribute("value"); // indeterminate: the server does not say how far it is
      const tick = function () {
        const seconds = Math.round((Date.now() - started) / 1000);
        text.textContent = box.dataset.working.replace("{seconds}", seconds);
      };
      tick();
      timer = window.setInterval(tick, 1000);
    });
    const show = function () {
      if (timer) window.clearInterval(timer);
      // The answer is the page the plain form would have shown: the result or the bad lines.
      if (request.responseURL && request.responseURL.indexOf("/members/import") === -1) {
        window.location.assign(request.responseURL);
        return;
      }
      document.open();
      document.write(request.responseText);
      document.close();
    };
    request.addEventListener("load", show);
    request.addEventListener("error", function () {
      if (timer) window.clearInterval(timer);
      button.disabled = false;
      text.textContent = box.dataset.failed;
    });
    request.open("POST", form.action);
    request.send(new FormData(form));
  });
})();

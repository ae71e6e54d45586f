// The venue wall: a WebSocket says "something changed"; the page then re-reads the wall.
// No polling; after every (re)connection the page re-reads, so a lost message loses nothing.
"use strict";
(function () {
  const wall = document.getElementById("wall");
  const status = document.getElementById("live-status");
  if (!wall) { return; }
  const sessionId = wall.dataset.session;
  const words = wall.dataset;
  let delay = 1000;

  function line(className, text) {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  }

  function tile(venue) {
    const article = document.createElement("article");
    article.className = "tile " + (venue.online ? "online" : "offline");
    article.dataset.code = venue.code;
    const heading = document.createElement("h2");
    heading.textContent = venue.name + " ";
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = venue.role === "main" ? words.main : words.branch;
    heading.appendChild(badge);
    article.appendChild(heading);
    article.appendChild(line("agent", venue.online ? words.online : words.offline));
    const count = line("count", "");
    const strong = document.createElement("strong");
    strong.textContent = String(venue.checked_in);
    count.appendChild(strong);
    count.appendChild(document.createTextNode(" / " + venue.expected + " " + words.checked));
    article.appendChild(count);
    const seen = venue.last_seen_at ? new Date(venue.last_seen_at).toLocaleTimeString() : words.never;
    article.appendChild(line("muted seen", words.seen + ": " + seen));
    const queue = venue.queue_depth === null ? "—" : String(venue.queue_depth);
    article.appendChild(line("muted queue", words.queue + ": " + queue));
    return article;
  }

  async function reread() {
    const response = await fetch("/api/v1/sessions/" + encodeURIComponent(sessionId) + "/wall",
                                 {credentials: "same-origin"});
    if (!response.ok) { return; }
    const body = await response.json();
    wall.replaceChildren(...body.venues.map(tile));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/sessions/" +
                                 encodeURIComponent(sessionId) + "/live");
    socket.addEventListener("open", function () {
      delay = 1000;
      status.textContent = status.dataset.live;
      reread();
    });
    socket.addEventListener("message", reread);
    socket.addEventListener("close", function () {
      status.textContent = status.dataset.lost;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }
  connect();
})();

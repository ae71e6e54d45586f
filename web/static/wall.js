// The venue wall of the operator console.
// A WebSocket says "something changed"; the page then re-reads the wall. No polling; after every
// (re)connection the page re-reads, so a lost message loses nothing.
// Other scripts of the page (broadcaster.js) use HetangConsole.wall: they hear every read through
// onRead, and ask for a read with reread / rereadSoon.
"use strict";
(function () {
  const wall = document.getElementById("wall");
  if (!wall) { return; }
  const fill = window.HetangConsole.fill;
  const element = window.HetangConsole.element;
  const liveStatus = document.getElementById("live-status");
  const readinessBox = document.getElementById("readiness");
  const filterBar = document.getElementById("wall-filters");
  const sessionId = wall.dataset.session;
  const words = wall.dataset;
  const api = "/api/v1/sessions/" + encodeURIComponent(sessionId);
  const clockFormat = timeFormat(wall.dataset.tz);
  const REREAD_GAP_MS = 1000;  // every agent reports every few seconds: re-read once a second
  const FIRST_SOCKET_DELAY_MS = 1000;
  const LAST_SOCKET_DELAY_MS = 30000;
  const listeners = [];  // called with every body the wall was drawn from
  let socketDelay = FIRST_SOCKET_DELAY_MS;

  function timeFormat(zone) {
    const options = {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false};
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined,
                                     Object.assign({timeZone: zone || undefined}, options));
    } catch (error) {
      return new Intl.DateTimeFormat(undefined, options);
    }
  }

  function clock(iso) {
    return clockFormat.format(new Date(iso));
  }

  function number(value, digits) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(digits || 0);
  }

  // ---- drawing ----

  // The server judges each venue (server/domain/wall_tiles.py): its condition names the badge's
  // words and colour, data-cond-* and data-badge-* on the wall.
  function conditionKey(prefix, condition) {
    return prefix + condition.split("_").map(function (part) {
      return part.charAt(0).toUpperCase() + part.slice(1);
    }).join("");
  }

  function badge(condition) {
    return element("span", "badge " + words[conditionKey("badge", condition)],
                   words[conditionKey("cond", condition)]);
  }

  function figures(stream) {
    return [
      words.bitrate + " " + number(stream.bitrate_kbps) + " kbps",
      words.fps + " " + number(stream.fps) + " fps",
      words.loss + " " + number(stream.loss_pct, 1) + "%",
      words.freezes + " " + number(stream.freezes),
    ].join(" · ");
  }

  // What the badge's condition means for this venue right now, in a few words.
  function detail(venue, broadcast) {
    switch (venue.condition) {
      case "on_air": {
        let text = fill(words.receivers, {count: broadcast.subscribers});
        if (broadcast.since) { text += " · " + fill(words.since, {time: clock(broadcast.since)}); }
        return text;
      }
      case "source_lost": return words.waitingSource;
      case "not_on_air": return words.notOnAir;
      case "off_air": return words.nothingToReceive;
      case "offline": return venue.last_seen_at ? words.unheard : words.never;
      case "no_report":
        return venue.stream ? fill(words.lastReport, {time: clock(venue.stream.at)})
                            : words.neverReported;
      default: return venue.stream ? figures(venue.stream) : "";
    }
  }

  // Which of the two pictures the relay sends a venue: the full one, or the lighter one its thin
  // link can carry (null when it is not receiving).
  function qualityMark(quality) {
    if (quality !== "high" && quality !== "low") { return null; }
    // Not a .badge: the stream-state badge stays the tile's only one.
    const mark = element("span", "quality quality-" + quality,
                         quality === "high" ? words.qualityHigh : words.qualityLow);
    mark.title = quality === "high" ? words.qualityHighTitle : words.qualityLowTitle;
    return mark;
  }

  function streamLine(venue, broadcast) {
    const line = element("p", "stream");
    line.append(badge(venue.condition), " ");
    const quality = venue.role === "main" ? null : qualityMark(venue.stream_quality);
    if (quality) { line.append(quality, " "); }
    line.append(element("span", "metrics", detail(venue, broadcast)));
    return line;
  }

  // How the picture reaches the venue (direct, through NAT, or via the TURN relay and how).
  function pathLabel(path) {
    const key = path ? "path" + path.replace(/(^|[/-])([a-z])/g, function (_, sep, letter) {
      return letter.toUpperCase();
    }) : "";
    return (key && words[key]) || "—";
  }

  function countLine(venue) {
    const count = element("p", "count");
    count.appendChild(element("strong", "", String(venue.checked_in)));
    count.appendChild(document.createTextNode(" / " + venue.expected + " "));
    count.appendChild(element("span", "muted", words.checked));
    return count;
  }

  function tile(venue, broadcast) {
    const article = element("article", "tile " + (venue.online ? "online" : "offline") + " " +
                                       venue.role + (venue.problem ? " problem" : ""));
    article.dataset.code = venue.code;
    article.dataset.condition = venue.condition;
    const heading = element("h2", "", venue.name + " ");
    const role = venue.role === "main" ? words.main : words.branch;
    heading.appendChild(element("span", "badge", role));
    article.appendChild(heading);
    const agentless = venue.role === "main" && !venue.last_seen_at;
    article.appendChild(element("p", "agent", agentless ? words.mainSource
                                              : venue.online ? words.online : words.offline));
    article.appendChild(streamLine(venue, broadcast));
    article.appendChild(countLine(venue));
    const seen = venue.last_seen_at ? clock(venue.last_seen_at) : words.never;
    article.appendChild(element("p", "muted seen", words.seen + ": " + seen));
    const queue = venue.queue_depth === null ? "—" : String(venue.queue_depth);
    article.appendChild(element("p", "muted queue", words.queue + ": " + queue));
    if (venue.role === "branch") {
      article.appendChild(element("p", "muted path", words.path + ": " + pathLabel(venue.ice_path)));
    }
    return article;
  }

  function showReadiness(ready) {
    if (!readinessBox) { return; }
    const said = readinessBox.dataset;
    const online = element("p", "ready-online");
    online.appendChild(element("strong", "", fill(said.online, {
      online: ready.online, total: ready.branches})));
    const parts = [online];
    if (ready.offline.length) {
      parts.push(element("p", "ready-offline", fill(said.offline, {count: ready.offline.length})));
      const list = element("ul", "offline-list");
      ready.offline.forEach(function (name) { list.appendChild(element("li", "", name)); });
      parts.push(list);
    } else {
      parts.push(element("p", "ready-offline", said.allOnline));
    }
    parts.push(element("p", "ready-receiving", fill(said.receiving, {
      good: ready.receiving_well, total: ready.branches})));
    readinessBox.replaceChildren(...parts);
    readinessBox.classList.toggle("ready", ready.ready);
    readinessBox.classList.toggle("not-ready", !ready.ready);
  }

  // A recording that gave up (a full disk) is said at once; the broadcast itself goes on.
  const recordingAlarm = document.getElementById("recording-alarm");
  function showRecording(recording) {
    if (!recordingAlarm || !recording) { return; }
    const stopped = recording.state === "stopped";
    recordingAlarm.hidden = !stopped;
    if (stopped) {
      recordingAlarm.textContent = recording.problem === "disk_full"
        ? recordingAlarm.dataset.diskFull : recordingAlarm.dataset.writeFailed;
    }
  }

  // ---- filters: all venues, those needing attention, offline, interrupted ----

  const FILTERS = {
    all: function () { return true; },
    problems: function (venue) { return venue.problem; },
    offline: function (venue) { return venue.condition === "offline"; },
    down: function (venue) { return venue.condition === "down"; },
  };

  function countFilters(venues) {
    if (!filterBar) { return; }
    filterBar.querySelectorAll("button[data-filter]").forEach(function (button) {
      const keep = FILTERS[button.dataset.filter];
      button.querySelector(".n").textContent = String(venues.filter(keep).length);
    });
  }

  if (filterBar) {
    filterBar.addEventListener("click", function (event) {
      const button = event.target.closest("button[data-filter]");
      if (!button) { return; }
      wall.dataset.filter = button.dataset.filter;
      filterBar.querySelectorAll("button[data-filter]").forEach(function (other) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
    });
  }

  // ---- reading ----

  // Read the wall now and draw it; the body read, or null when it could not be read.
  async function reread() {
    let body;
    try {
      const response = await fetch(api + "/wall", {credentials: "same-origin",
                                                   headers: {Accept: "application/json"}});
      if (!response.ok) { return null; }
      body = await response.json();
    } catch (error) {
      return null;  // the socket's next message or reconnection reads again
    }
    wall.replaceChildren(...body.venues.map(function (venue) {
      return tile(venue, body.broadcast);
    }));
    showReadiness(body.readiness);
    showRecording(body.broadcast.recording);
    countFilters(body.venues);
    listeners.forEach(function (listener) { listener(body); });
    return body;
  }

  // Messages come in bursts (every agent reports its stream every few seconds): one re-read runs
  // at a time, at most one more is queued, and they are spaced out a little.
  let reading = null;
  let readAgain = false;
  let lastRead = 0;
  function rereadSoon() {
    if (reading) {
      readAgain = true;
      return;
    }
    const wait = Math.max(0, lastRead + REREAD_GAP_MS - Date.now());
    reading = new Promise(function (resolve) { setTimeout(resolve, wait); })
      .then(reread)
      .finally(function () {
        lastRead = Date.now();
        reading = null;
        if (readAgain) {
          readAgain = false;
          rereadSoon();
        }
      });
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/sessions/" +
                                 encodeURIComponent(sessionId) + "/live");
    socket.addEventListener("open", function () {
      socketDelay = FIRST_SOCKET_DELAY_MS;
      liveStatus.textContent = liveStatus.dataset.live;
      rereadSoon();
    });
    socket.addEventListener("message", rereadSoon);
    socket.addEventListener("close", function () {
      liveStatus.textContent = liveStatus.dataset.lost;
      setTimeout(connect, socketDelay);
      socketDelay = Math.min(socketDelay * 2, LAST_SOCKET_DELAY_MS);
    });
  }

  window.HetangConsole.wall = {
    api: api,
    reread: reread,
    rereadSoon: rereadSoon,
    onRead: function (listener) { listeners.push(listener); },
  };
  // Connect once every deferred script of the page has run, so that the scripts after this one
  // (broadcaster.js) have said onRead before the first read.
  document.addEventListener("DOMContentLoaded", connect);
})();

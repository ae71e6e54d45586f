// The operator console.
// The venue wall: a WebSocket says "something changed"; the page then re-reads the wall. No
// polling; after every (re)connection the page re-reads, so a lost message loses nothing.
// The broadcast (operators only): camera and microphone go out over one WebRTC connection,
// offered once with every ICE candidate (the server answers once); when the connection drops
// while the operator has not pressed End, the page publishes again by itself and says so.
"use strict";
(function () {
  const wall = document.getElementById("wall");
  if (!wall) { return; }
  const liveStatus = document.getElementById("live-status");
  const readinessBox = document.getElementById("readiness");
  const sessionId = wall.dataset.session;
  const words = wall.dataset;
  const api = "/api/v1/sessions/" + encodeURIComponent(sessionId);
  const clockFormat = timeFormat(wall.dataset.tz);
  const REREAD_GAP_MS = 1000;  // every agent reports every few seconds: re-read once a second
  let socketDelay = 1000;
  let broadcaster = null;  // set below when this user may broadcast

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

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

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // ---- the wall ----

  function receivingWell(venue) {
    return venue.stream !== null && !venue.stream.stale && venue.stream.state === "good";
  }

  function streamLine(venue, broadcast) {
    let mark;
    let detail;
    if (venue.role === "main") {
      if (broadcast.on && broadcast.publishing) {
        mark = element("span", "badge stream-good", words.onAir);
        detail = fill(words.receivers, {count: broadcast.subscribers});
        if (broadcast.since) {
          detail += " · " + fill(words.since, {time: clock(broadcast.since)});
        }
      } else if (broadcast.on) {
        mark = element("span", "badge stream-down", words.sourceLost);
        detail = words.waitingSource;
      } else {
        mark = element("span", "badge stream-none", words.offAir);
        detail = words.notStarted;
      }
    } else {
      const stream = venue.stream;
      if (stream === null) {
        mark = element("span", "badge stream-none", words.none);
        detail = words.neverReported;
      } else if (stream.stale || !["good", "degraded", "down"].includes(stream.state)) {
        mark = element("span", "badge stream-none", words.none);
        detail = fill(words.lastReport, {time: clock(stream.at)});
      } else {
        mark = element("span", "badge stream-" + stream.state, words[stream.state]);
        detail = [
          words.bitrate + " " + number(stream.bitrate_kbps) + " kbps",
          words.fps + " " + number(stream.fps) + " fps",
          words.loss + " " + number(stream.loss_pct, 1) + "%",
          words.freezes + " " + number(stream.freezes),
        ].join(" · ");
      }
    }
    const line = element("p", "stream");
    line.append(mark, " ", element("span", "metrics", detail));
    return line;
  }

  function tile(venue, broadcast) {
    const article = element("article", "tile " + (venue.online ? "online" : "offline") + " " +
                                       venue.role);
    article.dataset.code = venue.code;
    const heading = element("h2", "", venue.name + " ");
    const role = venue.role === "main" ? words.main : words.branch;
    heading.appendChild(element("span", "badge", role));
    article.appendChild(heading);
    article.appendChild(element("p", "agent", venue.online ? words.online : words.offline));
    article.appendChild(streamLine(venue, broadcast));
    const count = element("p", "count");
    count.appendChild(element("strong", "", String(venue.checked_in)));
    count.appendChild(document.createTextNode(" / " + venue.expected + " "));
    count.appendChild(element("span", "muted", words.checked));
    article.appendChild(count);
    const seen = venue.last_seen_at ? clock(venue.last_seen_at) : words.never;
    article.appendChild(element("p", "muted seen", words.seen + ": " + seen));
    const queue = venue.queue_depth === null ? "—" : String(venue.queue_depth);
    article.appendChild(element("p", "muted queue", words.queue + ": " + queue));
    return article;
  }

  function showReadiness(venues, broadcast) {
    if (!readinessBox) { return; }
    const said = readinessBox.dataset;
    const offline = venues.filter(function (venue) { return !venue.online; });
    const branches = venues.filter(function (venue) { return venue.role === "branch"; });
    const good = branches.filter(receivingWell).length;
    const online = element("p", "ready-online");
    online.appendChild(element("strong", "", fill(said.online, {
      online: venues.length - offline.length, total: venues.length})));
    const names = offline.map(function (venue) { return venue.name; }).join(said.separator);
    readinessBox.replaceChildren(
      online,
      element("p", "ready-offline",
              offline.length ? fill(said.offline, {names: names}) : said.allOnline),
      element("p", "ready-receiving", fill(said.receiving, {good: good, total: branches.length})));
    const unready = offline.length > 0 || (broadcast.on && good < branches.length);
    readinessBox.classList.toggle("ready", !unready);
    readinessBox.classList.toggle("not-ready", unready);
  }

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
    showReadiness(body.venues, body.broadcast);
    if (broadcaster) { broadcaster.heard(body); }
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
      socketDelay = 1000;
      liveStatus.textContent = liveStatus.dataset.live;
      rereadSoon();
    });
    socket.addEventListener("message", rereadSoon);
    socket.addEventListener("close", function () {
      liveStatus.textContent = liveStatus.dataset.lost;
      setTimeout(connect, socketDelay);
      socketDelay = Math.min(socketDelay * 2, 30000);
    });
  }

  // ---- the broadcast ----

  function makeBroadcaster(panel) {
    const said = panel.dataset;
    const iceServers = JSON.parse(said.iceServers || "[]");
    const broadcastable = JSON.parse(said.broadcastable || "[]");
    const preview = document.getElementById("preview");
    const cameraSelect = document.getElementById("camera");
    const microphoneSelect = document.getElementById("microphone");
    const startButton = document.getElementById("start-broadcast");
    const takeOverButton = document.getElementById("take-over");
    const endButton = document.getElementById("end-broadcast");
    const statusLine = document.getElementById("broadcast-status");
    const FIRST_RETRY_MS = 1000;
    const LAST_RETRY_MS = 10000;
    const DROP_GRACE_MS = 2000;  // "disconnected" often heals by itself within a second or two
    const GATHER_LIMIT_MS = 5000;
    const MAX_VIDEO_BPS = 1500000;  // every branch gets the same bitrate; townships' lines are thin

    let media = null;  // the camera and microphone: previewed, and sent while on air
    let pc = null;
    let wanted = false;  // the operator pressed Start (or Take over) and not End
    let recovering = false;
    let attempt = 0;
    let inflight = null;
    let retryDelay = FIRST_RETRY_MS;
    let retryTimer = null;
    let dropTimer = null;
    let onAir = said.on === "true";
    let publishing = said.publishing === "true";
    let sessionState = said.state;
    let asking = false;  // the browser is being asked for the devices
    let remembered = null;

    function say(text, kind) {
      statusLine.textContent = text;
      statusLine.className = "broadcast-status" + (kind ? " " + kind : "");
    }

    function problem(reason, status) {
      const error = new Error(reason);
      error.reason = reason;
      error.status = status || 0;
      return error;
    }

    // A refusal (the session has ended, the role may not…) stays a refusal however often asked.
    function refused(error) {
      return error.status >= 400 && error.status < 500 && ![408, 429].includes(error.status);
    }

    function reasonOf(error) {
      return error && error.reason ? error.reason : String(error && error.message || error);
    }

    function deviceProblem(error) {
      const name = error && error.name;
      if (name === "NotAllowedError" || name === "SecurityError") { return problem(said.denied); }
      if (name === "NotFoundError" || name === "OverconstrainedError") {
        return problem(said.noDevice);
      }
      if (name === "NotReadableError" || name === "AbortError") { return problem(said.busy); }
      return problem(fill(said.deviceFailed, {reason: name || String(error)}));
    }

    function showButtons() {
      const mayStart = broadcastable.includes(sessionState);
      startButton.hidden = wanted || onAir;
      startButton.disabled = !mayStart || asking;
      takeOverButton.hidden = wanted || !onAir;
      takeOverButton.disabled = !mayStart || asking;
      endButton.disabled = !wanted && !onAir;
    }

    // What the page last had to tell (ended elsewhere, taken over, ended here) stays up until
    // the broadcast changes again; the regular words come back after that.
    function note(text, kind) {
      remembered = {text: text, kind: kind, on: onAir, publishing: publishing};
      say(text, kind);
    }

    function sayAtRest() {
      if (wanted) { return; }
      if (remembered && remembered.on === onAir && remembered.publishing === publishing) {
        say(remembered.text, remembered.kind);
        return;
      }
      remembered = null;
      if (onAir && publishing) {
        say(said.elsewhere, "warn");
      } else if (onAir) {
        say(said.sourceLost, "warn");
      } else if (!broadcastable.includes(sessionState)) {
        say(said.closed, "");
      } else {
        say(said.idle, "");
      }
    }

    function constraints() {
      const video = {width: {ideal: 1280}, height: {ideal: 720}};
      if (cameraSelect.value) { video.deviceId = {exact: cameraSelect.value}; }
      const audio = microphoneSelect.value ? {deviceId: {exact: microphoneSelect.value}} : true;
      return {video: video, audio: audio};
    }

    // Open the chosen devices; on air, the new tracks replace the old ones without reconnecting.
    async function useDevices() {
      let fresh;
      try {
        fresh = await navigator.mediaDevices.getUserMedia(constraints());
      } catch (error) {
        throw deviceProblem(error);
      }
      const old = media;
      media = fresh;
      preview.srcObject = fresh;
      if (pc) {
        for (const sender of pc.getSenders()) {
          const track = sender.track && fresh.getTracks().find(function (candidate) {
            return candidate.kind === sender.track.kind;
          });
          if (track) { await sender.replaceTrack(track); }
        }
      }
      if (old) { old.getTracks().forEach(function (track) { track.stop(); }); }
    }

    function chosenId(kind, select) {
      const track = media && media.getTracks().find(function (t) { return t.kind === kind; });
      return track && track.getSettings().deviceId ? track.getSettings().deviceId : select.value;
    }

    function fillPicker(select, devices, unnamed, chosen) {
      select.replaceChildren(...devices.map(function (device, index) {
        const option = element("option", "", device.label || fill(unnamed, {n: index + 1}));
        option.value = device.deviceId;
        return option;
      }));
      if (devices.some(function (device) { return device.deviceId === chosen; })) {
        select.value = chosen;
      }
    }

    async function listDevices() {
      const devices = await navigator.mediaDevices.enumerateDevices();
      fillPicker(cameraSelect, devices.filter(function (d) { return d.kind === "videoinput"; }),
                 said.cameraN, chosenId("video", cameraSelect));
      fillPicker(microphoneSelect,
                 devices.filter(function (d) { return d.kind === "audioinput"; }),
                 said.microphoneN, chosenId("audio", microphoneSelect));
    }

    // Ask for the devices once (device names are only listed after that), then fill the pickers.
    async function openDevices() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia ||
          !window.RTCPeerConnection) {
        note(fill(said.devicesFailed, {reason: said.unsupported}), "error");
        startButton.disabled = takeOverButton.disabled = true;
        return;
      }
      await changeDevice();
      try {
        await listDevices();
      } catch (error) {
        // The pickers stay empty; the browser's default devices are used.
      }
    }

    async function changeDevice() {
      asking = true;
      showButtons();
      if (!wanted) { say(said.asking, ""); }
      try {
        await useDevices();
        if (!wanted) {
          remembered = null;
          sayAtRest();
        }
      } catch (error) {
        note(fill(said.devicesFailed, {reason: reasonOf(error)}), "error");
      }
      asking = false;
      showButtons();
    }

    async function send(method, body) {
      let response;
      try {
        response = await fetch(api + "/broadcast", {
          method: method,
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Language": document.documentElement.lang || "zh-CN",
            "X-CSRF-Token": said.csrf,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        throw problem(said.networkFailed);
      }
      let answer = null;
      try {
        answer = await response.json();
      } catch (error) {
        answer = null;
      }
      if (!response.ok) {
        const message = answer && answer.error && answer.error.message;
        throw problem(message || fill(said.httpFailed, {status: response.status}),
                      response.status);
      }
      return answer;
    }

    function gathered(peer) {
      if (peer.iceGatheringState === "complete") { return Promise.resolve(); }
      return new Promise(function (resolve) {
        const limit = setTimeout(done, GATHER_LIMIT_MS);
        function check() {
          if (peer.iceGatheringState === "complete") { done(); }
        }
        function done() {
          clearTimeout(limit);
          peer.removeEventListener("icegatheringstatechange", check);
          resolve();
        }
        peer.addEventListener("icegatheringstatechange", check);
      });
    }

    function dropPeer() {
      clearTimeout(dropTimer);
      dropTimer = null;
      if (pc) {
        const old = pc;
        pc = null;
        old.close();
      }
    }

    // One publish: a new connection with every candidate in the offer, one answer back.
    async function publishOnce() {
      const mine = ++attempt;
      dropPeer();
      if (!media || media.getTracks().some(function (t) { return t.readyState === "ended"; })) {
        await useDevices();
      }
      const peer = new RTCPeerConnection({iceServers: iceServers});
      pc = peer;
      for (const track of media.getTracks()) {
        const init = {direction: "sendonly", streams: [media]};
        if (track.kind === "video") { init.sendEncodings = [{maxBitrate: MAX_VIDEO_BPS}]; }
        peer.addTransceiver(track, init);
      }
      peer.addEventListener("connectionstatechange", function () { watch(peer); });
      await peer.setLocalDescription(await peer.createOffer());
      await gathered(peer);
      if (mine !== attempt) { return; }
      if (!peer.localDescription.sdp.includes("a=candidate")) {
        throw problem(said.iceFailed);
      }
      const answer = await send("POST", {sdp: peer.localDescription.sdp, type: "offer"});
      if (mine !== attempt || peer !== pc) { return; }
      await peer.setRemoteDescription({type: "answer", sdp: answer.sdp});
      const transport = peer.getSenders().map(function (sender) { return sender.transport; })
        .find(Boolean);
      if (transport) {
        transport.addEventListener("statechange", function () {
          if (transport.state === "closed") { closedByServer(peer); }
        });
      }
    }

    function publish() {
      inflight = publishOnce().finally(function () { inflight = null; });
      return inflight;
    }

    function watch(peer) {
      if (peer !== pc || !wanted) { return; }
      const state = peer.connectionState;
      if (state === "connected") {
        clearTimeout(dropTimer);
        dropTimer = null;
        clearTimeout(retryTimer);
        retryTimer = null;
        retryDelay = FIRST_RETRY_MS;
        say(recovering ? said.recovered : said.live, "ok");
        recovering = false;
        rereadSoon();
      } else if (state === "disconnected") {
        if (!dropTimer) {
          dropTimer = setTimeout(function () {
            dropTimer = null;
            if (peer === pc && peer.connectionState !== "connected") { connectionLost(); }
          }, DROP_GRACE_MS);
        }
      } else if (state === "failed" || state === "closed") {
        connectionLost();
      }
    }

    function connectionLost() {
      if (!wanted || retryTimer) { return; }
      dropPeer();
      recovering = true;
      say(said.reconnecting, "warn");
      retryLater();
    }

    // The server closed the connection on purpose (a DTLS close, not a network failure): another
    // page took the broadcast over, or someone ended it. Publishing again then would fight the
    // other page, so the page stands down; in any other case it publishes again.
    async function closedByServer(peer) {
      if (peer !== pc || !wanted) { return; }
      dropPeer();
      const body = await reread();
      if (!wanted || pc || retryTimer || inflight) { return; }  // the operator acted meanwhile
      if (body && body.broadcast.on && body.broadcast.publishing) {
        standDown(said.replaced);
      } else if (body && !body.broadcast.on) {
        standDown(said.endedElsewhere);
      } else {
        recovering = true;
        say(said.reconnecting, "warn");
        retryLater();
      }
    }

    function standDown(message) {
      wanted = false;
      recovering = false;
      attempt += 1;
      clearTimeout(retryTimer);
      retryTimer = null;
      note(message, "warn");
      showButtons();
    }

    function retryLater(reason) {
      clearTimeout(retryTimer);
      const wait = retryDelay;
      retryDelay = Math.min(retryDelay * 2, LAST_RETRY_MS);
      if (reason) {
        say(fill(said.retryFailed, {reason: reason, seconds: Math.round(wait / 1000)}), "warn");
      }
      retryTimer = setTimeout(async function () {
        retryTimer = null;
        if (!wanted) { return; }
        try {
          await publish();
        } catch (error) {
          if (!wanted) { return; }
          if (refused(error)) {
            dropPeer();
            standDown(fill(said.startFailed, {reason: reasonOf(error)}));
          } else {
            retryLater(reasonOf(error));
          }
        }
      }, wait);
    }

    async function start() {
      remembered = null;
      wanted = true;
      recovering = false;
      retryDelay = FIRST_RETRY_MS;
      showButtons();
      say(said.starting, "");
      try {
        await publish();
      } catch (error) {
        if (!wanted) { return; }
        wanted = false;
        dropPeer();
        note(fill(said.startFailed, {reason: reasonOf(error)}), "error");
        showButtons();
        rereadSoon();
      }
    }

    async function end() {
      wanted = false;
      recovering = false;
      attempt += 1;
      clearTimeout(retryTimer);
      retryTimer = null;
      endButton.disabled = true;
      say(said.ending, "");
      if (inflight) {
        // A publish still on its way would put the broadcast back on after the End below.
        await inflight.catch(function () { return null; });
      }
      dropPeer();
      if (media) {
        media.getTracks().forEach(function (track) { track.stop(); });
        media = null;
        preview.srcObject = null;
      }
      try {
        await send("DELETE");
        onAir = false;
        publishing = false;
        note(said.ended, "");
      } catch (error) {
        note(fill(said.endFailed, {reason: reasonOf(error)}), "error");
      }
      showButtons();
      rereadSoon();
    }

    // The wall was re-read: keep the controls in step with the server's view of the broadcast.
    function heard(body) {
      onAir = body.broadcast.on;
      publishing = body.broadcast.publishing;
      sessionState = body.state;
      if (!wanted) { sayAtRest(); }
      showButtons();
    }

    startButton.addEventListener("click", start);
    takeOverButton.addEventListener("click", start);
    endButton.addEventListener("click", end);
    cameraSelect.addEventListener("change", changeDevice);
    microphoneSelect.addEventListener("change", changeDevice);
    if (navigator.mediaDevices) {
      navigator.mediaDevices.addEventListener("devicechange", function () {
        listDevices().catch(function () { return null; });
      });
    }
    showButtons();
    openDevices();
    return {heard: heard};
  }

  const panel = document.getElementById("broadcast");
  if (panel) { broadcaster = makeBroadcaster(panel); }
  connect();
})();

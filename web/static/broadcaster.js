// The broadcast of the operator console (operators only): camera and microphone go out over one
// WebRTC connection, offered once with every ICE candidate (the server answers once); when the
// connection drops while the operator has not pressed End, the page publishes again by itself and
// says so. The picture goes out twice: full (the camera track) and lighter (a clone of it at half
// the size and a quarter of the bitrate, the second video track); the relay sends each branch
// venue the one its link carries. (Two tracks, not simulcast: aiortc cannot receive RFC 8853
// simulcast, its SDP knows no a=rid / a=simulcast.)
//
// What this page is doing with the broadcast is one value, `state`, changed only by enter():
//   idle          not sending (the broadcast may still be on from another page)
//   starting      Start or Take over was pressed; the first publish is on its way
//   live          the connection is up and the picture is going out
//   reconnecting  the connection dropped; the page publishes again by itself
//   ending        End was pressed; the server is being told
// starting, live and reconnecting are "wanted": the operator pressed Start and not End.
// Kept apart from it: what the server last said (`server`), and the camera request (`asking`).
"use strict";
(function () {
  const panel = document.getElementById("broadcast");
  const wall = window.HetangConsole.wall;
  if (!panel || !wall) { return; }
  const fill = window.HetangConsole.fill;
  const element = window.HetangConsole.element;
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
  const MAX_VIDEO_BPS = 1500000;  // the full picture
  const LOW_VIDEO_BPS = 250000;  // the lighter picture, for branches whose lines are thin
  const LOW_SCALE = 2;  // the lighter picture's width and height are the camera's divided by this

  // Where each state may go. Taking over is offered again while ending when a re-read of the wall
  // says the broadcast is still on, hence ending → starting.
  const NEXT = {
    idle: ["starting", "ending"],
    starting: ["live", "reconnecting", "idle", "ending"],
    live: ["live", "reconnecting", "idle", "ending"],
    reconnecting: ["live", "reconnecting", "idle", "ending"],
    ending: ["idle", "starting", "ending"],
  };

  let state = "idle";
  // The server's view, from the page and then from every read of the wall.
  let server = {on: said.on === "true", publishing: said.publishing === "true",
                sessionState: said.state};
  let asking = false;  // the browser is being asked for the devices
  let remembered = null;  // the last note, see note()
  let media = null;  // the camera and microphone: previewed, and sent while on air
  let lighter = null;  // the clone of the camera sent as the lighter picture while on air
  let pc = null;
  let attempt = 0;  // bumped to abandon a publish on its way
  let inflight = null;  // the publish on its way
  let retryDelay = FIRST_RETRY_MS;
  let retryTimer = null;
  let dropTimer = null;

  function enter(next) {
    if (!NEXT[state].includes(next)) {
      throw new Error("broadcaster: no way from " + state + " to " + next);
    }
    state = next;
  }

  function wanted() {
    return state === "starting" || state === "live" || state === "reconnecting";
  }

  // ---- what the page says ----

  function say(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "broadcast-status" + (kind ? " " + kind : "");
  }

  function showButtons() {
    const mayStart = broadcastable.includes(server.sessionState);
    startButton.hidden = wanted() || server.on;
    startButton.disabled = !mayStart || asking;
    takeOverButton.hidden = wanted() || !server.on;
    takeOverButton.disabled = !mayStart || asking;
    endButton.disabled = !wanted() && !server.on;
  }

  // What the page last had to tell (ended elsewhere, taken over, ended here) stays up until
  // the broadcast changes again; the regular words come back after that.
  function note(text, kind) {
    remembered = {text: text, kind: kind, on: server.on, publishing: server.publishing};
    say(text, kind);
  }

  function sayAtRest() {
    if (wanted()) { return; }
    if (remembered && remembered.on === server.on &&
        remembered.publishing === server.publishing) {
      say(remembered.text, remembered.kind);
      return;
    }
    remembered = null;
    if (server.on && server.publishing) {
      say(said.elsewhere, "warn");
    } else if (server.on) {
      say(said.sourceLost, "warn");
    } else if (!broadcastable.includes(server.sessionState)) {
      say(said.closed, "");
    } else {
      say(said.idle, "");
    }
  }

  // ---- what went wrong ----

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

  // ---- camera and microphone ----

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
    const oldLighter = lighter;
    media = fresh;
    preview.srcObject = fresh;
    if (pc) {
      for (const sender of pc.getSenders()) {
        if (sender.track && sender.track === oldLighter) {
          await sender.replaceTrack(cloneCamera());
          continue;
        }
        const track = sender.track && fresh.getTracks().find(function (candidate) {
          return candidate.kind === sender.track.kind;
        });
        if (track) { await sender.replaceTrack(track); }
      }
    }
    if (old) { stopTracks(old); }
    if (oldLighter && oldLighter !== lighter) { oldLighter.stop(); }
  }

  // A new clone of the camera for the lighter picture (null without a camera).
  function cloneCamera() {
    const camera = media && media.getVideoTracks()[0];
    lighter = camera ? camera.clone() : null;
    return lighter;
  }

  function dropLighter() {
    if (lighter) {
      lighter.stop();
      lighter = null;
    }
  }

  function stopTracks(stream) {
    stream.getTracks().forEach(function (track) { track.stop(); });
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
    if (!wanted()) { say(said.asking, ""); }
    try {
      await useDevices();
      if (!wanted()) {
        remembered = null;
        sayAtRest();
      }
    } catch (error) {
      note(fill(said.devicesFailed, {reason: reasonOf(error)}), "error");
    }
    asking = false;
    showButtons();
  }

  // ---- the server ----

  async function send(method, body) {
    let response;
    try {
      response = await fetch(wall.api + "/broadcast", {
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

  // ---- the connection ----

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
    dropLighter();
  }

  function newPeer() {
    const peer = new RTCPeerConnection({iceServers: iceServers});
    for (const track of media.getTracks()) {
      const init = {direction: "sendonly", streams: [media]};
      if (track.kind === "video") { init.sendEncodings = [{maxBitrate: MAX_VIDEO_BPS}]; }
      peer.addTransceiver(track, init);
    }
    // The lighter picture: the relay takes the second video track for it.
    const clone = cloneCamera();
    if (clone) {
      peer.addTransceiver(clone, {
        direction: "sendonly",
        streams: [media],
        sendEncodings: [{maxBitrate: LOW_VIDEO_BPS, scaleResolutionDownBy: LOW_SCALE}],
      });
    }
    peer.addEventListener("connectionstatechange", function () { watch(peer); });
    return peer;
  }

  function watchTransport(peer) {
    const transport = peer.getSenders().map(function (sender) { return sender.transport; })
      .find(Boolean);
    if (transport) {
      transport.addEventListener("statechange", function () {
        if (transport.state === "closed") { closedByServer(peer); }
      });
    }
  }

  // One publish: a new connection with every candidate in the offer, one answer back.
  async function publishOnce() {
    const mine = ++attempt;
    dropPeer();
    if (!media || media.getTracks().some(function (t) { return t.readyState === "ended"; })) {
      await useDevices();
    }
    const peer = newPeer();
    pc = peer;
    await peer.setLocalDescription(await peer.createOffer());
    await gathered(peer);
    if (mine !== attempt) { return; }
    if (!peer.localDescription.sdp.includes("a=candidate")) {
      throw problem(said.iceFailed);
    }
    const answer = await send("POST", {sdp: peer.localDescription.sdp, type: "offer"});
    if (mine !== attempt || peer !== pc) { return; }
    await peer.setRemoteDescription({type: "answer", sdp: answer.sdp});
    watchTransport(peer);
  }

  function publish() {
    inflight = publishOnce().finally(function () { inflight = null; });
    return inflight;
  }

  function watch(peer) {
    if (peer !== pc || !wanted()) { return; }
    const connection = peer.connectionState;
    if (connection === "connected") {
      connected();
    } else if (connection === "disconnected") {
      if (!dropTimer) {
        dropTimer = setTimeout(function () {
          dropTimer = null;
          if (peer === pc && peer.connectionState !== "connected") { connectionLost(); }
        }, DROP_GRACE_MS);
      }
    } else if (connection === "failed" || connection === "closed") {
      connectionLost();
    }
  }

  function connected() {
    clearTimeout(dropTimer);
    dropTimer = null;
    clearTimeout(retryTimer);
    retryTimer = null;
    retryDelay = FIRST_RETRY_MS;
    say(state === "reconnecting" ? said.recovered : said.live, "ok");
    enter("live");
    wall.rereadSoon();
  }

  function connectionLost() {
    if (!wanted() || retryTimer) { return; }
    dropPeer();
    enter("reconnecting");
    say(said.reconnecting, "warn");
    retryLater();
  }

  // The server closed the connection on purpose (a DTLS close, not a network failure): another
  // page took the broadcast over, or someone ended it. Publishing again then would fight the
  // other page, so the page stands down; in any other case it publishes again.
  async function closedByServer(peer) {
    if (peer !== pc || !wanted()) { return; }
    dropPeer();
    const body = await wall.reread();
    if (!wanted() || pc || retryTimer || inflight) { return; }  // the operator acted meanwhile
    if (body && body.broadcast.on && body.broadcast.publishing) {
      standDown(said.replaced);
    } else if (body && !body.broadcast.on) {
      standDown(said.endedElsewhere);
    } else {
      enter("reconnecting");
      say(said.reconnecting, "warn");
      retryLater();
    }
  }

  function standDown(message) {
    enter("idle");
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
    retryTimer = setTimeout(republish, wait);
  }

  async function republish() {
    retryTimer = null;
    if (!wanted()) { return; }
    try {
      await publish();
    } catch (error) {
      if (!wanted()) { return; }
      if (refused(error)) {
        dropPeer();
        standDown(fill(said.startFailed, {reason: reasonOf(error)}));
      } else {
        retryLater(reasonOf(error));
      }
    }
  }

  // ---- asking first ----

  const EARLY_MS = 30 * 60 * 1000;  // going live earlier than this before the start asks first

  function startsAtClock(startsAt) {
    const options = {hour: "2-digit", minute: "2-digit", hour12: false};
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined,
                                     Object.assign({timeZone: said.tz || undefined}, options))
        .format(startsAt);
    } catch (error) {
      return startsAt.toISOString().slice(11, 16);
    }
  }

  // Going live long before the lesson shows the branch venues a picture too early: ask first.
  function earlyStartAgreed() {
    const startsAt = new Date(said.startsAt);
    const ahead = startsAt.getTime() - Date.now();
    if (!(ahead > EARLY_MS)) { return true; }
    return window.confirm(fill(said.earlyConfirm, {
      time: startsAtClock(startsAt), minutes: Math.ceil(ahead / 60000)}));
  }

  // The broadcast of a session not yet started: offer to start the session with it.
  async function offerToStartSession() {
    if (server.sessionState !== "scheduled" || !window.confirm(said.startSessionConfirm)) {
      return;
    }
    try {
      const response = await fetch(wall.api + "/start", {
        method: "POST",
        credentials: "same-origin",
        headers: {"Accept": "application/json", "X-CSRF-Token": said.csrf,
                  "Accept-Language": document.documentElement.lang || "zh-CN"},
      });
      if (!response.ok) {
        const answer = await response.json().catch(function () { return null; });
        const message = answer && answer.error && answer.error.message;
        throw problem(message || fill(said.httpFailed, {status: response.status}));
      }
      server.sessionState = "live";
    } catch (error) {
      note(fill(said.startSessionFailed, {reason: reasonOf(error)}), "error");
    }
    wall.rereadSoon();
  }

  // ---- the operator's buttons ----

  async function start() {
    remembered = null;
    enter("starting");
    retryDelay = FIRST_RETRY_MS;
    showButtons();
    say(said.starting, "");
    try {
      await publish();
    } catch (error) {
      if (!wanted()) { return; }
      enter("idle");
      dropPeer();
      note(fill(said.startFailed, {reason: reasonOf(error)}), "error");
      showButtons();
      wall.rereadSoon();
    }
  }

  async function end() {
    enter("ending");
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
      stopTracks(media);
      media = null;
      preview.srcObject = null;
    }
    try {
      await send("DELETE");
      server = {on: false, publishing: false, sessionState: server.sessionState};
      note(said.ended, "");
    } catch (error) {
      note(fill(said.endFailed, {reason: reasonOf(error)}), "error");
    }
    if (state === "ending") { enter("idle"); }  // not when Take over was pressed meanwhile
    showButtons();
    wall.rereadSoon();
  }

  // The wall was re-read: keep the controls in step with the server's view of the broadcast.
  function heard(body) {
    server = {on: body.broadcast.on, publishing: body.broadcast.publishing,
              sessionState: body.state};
    if (!wanted()) { sayAtRest(); }
    showButtons();
  }

  startButton.addEventListener("click", async function () {
    if (!earlyStartAgreed()) { return; }
    await start();
    if (wanted()) { await offerToStartSession(); }  // the server took the broadcast
  });
  takeOverButton.addEventListener("click", start);
  endButton.addEventListener("click", function () {
    if (window.confirm(said.endConfirm)) { end(); }
  });
  cameraSelect.addEventListener("change", changeDevice);
  microphoneSelect.addEventListener("change", changeDevice);
  if (navigator.mediaDevices) {
    navigator.mediaDevices.addEventListener("devicechange", function () {
      listDevices().catch(function () { return null; });
    });
  }
  wall.onRead(heard);
  showButtons();
  openDevices();
})();

"""The room screen's page: the lesson full screen, or a notice while there is nothing to show.
Small, hand-written, no CDN, Simplified Chinese."""

from __future__ import annotations

from html import escape

HTML = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>合堂 · 直播</title>
<link rel="stylesheet" href="/screen.css">
</head>
<body>
<video id="video" autoplay playsinline></video>
<div id="notice">
  <h1 id="title">合堂</h1>
  <p id="message">等待主会场开始直播…</p>
</div>
<p id="banner" hidden></p>
<aside id="checkin" hidden>
  <h2>扫码签到</h2>
  <div id="qr" data-url=""></div>
  <p>请用手机自己的网络（4G/5G）扫码，不要连接会场 Wi-Fi</p>
  <p class="small">二维码每 15 秒更换；手机没有信号时，请找工作人员用扫码枪签到</p>
</aside>
<button type="button" id="sound" hidden>点击开启声音</button>
<script src="/screen.js"></script>
</body>
</html>
"""

CSS = """
html, body { margin: 0; height: 100%; background: #000; color: #fff; overflow: hidden;
             font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; cursor: none; }
video { position: fixed; inset: 0; width: 100vw; height: 100vh; object-fit: contain;
        background: #000; }
#notice { position: fixed; inset: 0; display: flex; flex-direction: column;
          align-items: center; justify-content: center; background: #8b0000; }
#notice[hidden], #banner[hidden], #sound[hidden], #checkin[hidden] { display: none; }
#checkin { position: fixed; right: 2vh; bottom: 8vh; width: 36vh; padding: 1.5vh;
           background: #fff; color: #222; border-radius: 1vh; text-align: center; z-index: 2; }
#checkin h2 { font-size: 3vh; margin: 0 0 1vh; color: #b71c1c; }
#checkin p { font-size: 1.8vh; margin: 1vh 0 0; }
#checkin p.small { font-size: 1.5vh; color: #555; }
#qr svg { width: 100%; height: auto; display: block; shape-rendering: crispEdges; }
#notice h1 { font-size: 6vh; margin: 0 0 .5em; }
#notice p { font-size: 4vh; margin: 0; }
#banner { position: fixed; left: 0; right: 0; bottom: 0; margin: 0; padding: .4em;
          text-align: center; font-size: 3vh; background: #000a; }
#sound { position: fixed; right: 1em; top: 1em; font-size: 2.5vh; padding: .4em 1em;
         cursor: pointer; }
"""

JS = """
"use strict";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const video = document.getElementById("video");
const notice = document.getElementById("notice");
const message = document.getElementById("message");
const banner = document.getElementById("banner");
const sound = document.getElementById("sound");
const STUCK_MS = 15000;  // a picture that has not moved this long: connect afresh
let pc = null;
let connecting = false;
let lastTime = -1;
let lastMove = Date.now();

function hangUp() {
  if (pc) pc.close();
  pc = null;
  video.srcObject = null;
}
function gathered(peer) {
  // The agent does not trickle candidates: send the offer with all of them.
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise(resolve => {
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 3000);
  });
}
async function play() {
  try {
    await video.play();
    sound.hidden = !video.muted;
  } catch (e) {
    if (e.name !== "NotAllowedError") return;  // e.g. interrupted by a newer play()
    // Without a click the browser may refuse sound: play muted, offer a button.
    video.muted = true;
    sound.hidden = false;
    try { await video.play(); } catch (e2) { /* the next track event tries again */ }
  }
}
async function connect() {
  connecting = true;
  const peer = new RTCPeerConnection();
  pc = peer;
  try {
    peer.addTransceiver("video", {direction: "recvonly"});
    peer.addTransceiver("audio", {direction: "recvonly"});
    const stream = new MediaStream();
    peer.ontrack = event => {
      stream.addTrack(event.track);  // the element plays every track of its stream
      if (video.srcObject !== stream) {
        video.srcObject = stream;
        play();
      }
    };
    peer.onconnectionstatechange = () => {
      if (pc === peer && ["failed", "closed"].includes(peer.connectionState)) hangUp();
    };
    await peer.setLocalDescription(await peer.createOffer());
    await gathered(peer);
    const response = await fetch("/screen/offer", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({sdp: peer.localDescription.sdp, type: "offer"})
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    await peer.setRemoteDescription(await response.json());
    lastMove = Date.now();
  } catch (e) {
    if (pc === peer) hangUp();
  } finally {
    connecting = false;
  }
}
async function tick() {
  let state;
  try {
    state = await (await fetch("/screen/state")).json();
  } catch (e) {
    notice.hidden = false;
    message.textContent = "本机签到程序没有响应";
    return;
  }
  document.getElementById("title").textContent = state.title || "合堂";
  if (!state.live) {
    hangUp();
    notice.hidden = false;
    banner.hidden = true;
    message.textContent = "等待主会场开始直播…";
    return;
  }
  if (video.currentTime !== lastTime) {
    lastTime = video.currentTime;
    lastMove = Date.now();
  }
  if (!pc && !connecting) {
    message.textContent = "正在接收直播…";
    connect();
  } else if (pc && !connecting && Date.now() - lastMove > STUCK_MS) {
    hangUp();
  }
  const playing = pc !== null && video.readyState >= 2;
  notice.hidden = playing;
  banner.hidden = !playing || state.state !== "down";
  banner.textContent = "直播信号中断，正在重新连接…";
}
const checkin = document.getElementById("checkin");
const qr = document.getElementById("qr");
async function rotate() {
  // The self check-in code of this rotation; the next one is fetched as this one ends.
  let wait = 5000;
  try {
    const code = await (await fetch("/screen/code")).json();
    if (code.url) {
      if (qr.dataset.url !== code.url) {
        qr.innerHTML = code.svg;  // segno's SVG, made by this agent
        qr.dataset.url = code.url;
      }
      checkin.hidden = false;
      wait = Math.max(200, code.expires_in_s * 1000 + 100);
    } else {
      checkin.hidden = true;
      qr.dataset.url = "";
    }
  } catch (e) {
    checkin.hidden = true;  // an old code must not stay up
    qr.dataset.url = "";
  }
  setTimeout(rotate, wait);
}
rotate();
sound.addEventListener("click", () => {
  video.muted = false;
  play();
});
tick();
setInterval(tick, 2000);
"""


def render_screen(csrf_token: str) -> str:
    """The screen page with this process's CSRF token."""
    return HTML.replace("{csrf}", escape(csrf_token, quote=True))

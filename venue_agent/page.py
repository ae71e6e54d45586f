"""The staff page's HTML, CSS and JavaScript, and its PIN form: small, hand-written, no CDN,
Simplified Chinese."""

from __future__ import annotations

from html import escape

# The head both pages share; {csrf} is filled in when a page is served.
HEAD = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>合堂 · 分会场签到</title>
<link rel="stylesheet" href="/app.css">
</head>
"""

HTML = (
    HEAD
    + """<body>
<header>
  <h1>合堂 · 分会场签到 <span id="venue"></span></h1>
  <p id="link" class="badge">正在连接…</p>
  <p>待上传 <b id="queue">0</b> · 上次同步 <b id="last-sync">从未</b></p>
  <p>直播：<b id="stream">未接收</b> · <a href="/screen" target="_blank">打开直播大屏</a></p>
</header>
<main>
<section id="session-card">
  <h2>当前场次</h2>
  <p id="session">正在读取日程…</p>
  <p>扫码枪用于：
    <button type="button" class="kind" data-kind="in">签到</button>
    <button type="button" class="kind" data-kind="out">签退</button>
  </p>
  <p id="message" role="status" aria-live="polite"></p>
</section>
<section>
  <h2>名单查找</h2>
  <input id="search" type="search" placeholder="输入姓名、党员编号或卡号" autocomplete="off">
  <p id="roster-note" role="status" aria-live="polite"></p>
  <table><thead><tr><th>姓名</th><th>党员编号</th><th>状态</th><th></th></tr></thead>
  <tbody id="roster"></tbody></table>
  <form id="walk-in">
    <label>名单外人员：<input id="walk-in-no" placeholder="党员编号" autocomplete="off"></label>
    <button type="submit">签到</button>
  </form>
</section>
<section>
  <h2>在场人员 <span id="present-count"></span></h2>
  <ul id="present"></ul>
</section>
<section>
  <h2>被拒绝的签到 <span id="rejected-count"></span></h2>
  <table><thead><tr><th>编号/卡号</th><th>类型</th><th>时间</th><th>原因</th></tr></thead>
  <tbody id="rejected"></tbody></table>
</section>
</main>
<script src="/app.js"></script>
</body>
</html>
"""
)

CSS = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 0;
       background: #f6f4f0; color: #222; }
header { background: #b71c1c; color: #fff; padding: .6em 1.2em; }
header h1 { font-size: 1.4em; margin: .2em 0; }
header p { margin: .2em 0; }
header a { color: #fff; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(26em, 100%), 1fr));
       gap: 1em; padding: 1em; }
section { background: #fff; border-radius: 6px; padding: .6em 1em; box-shadow: 0 1px 3px #0002; }
h2 { font-size: 1.1em; border-bottom: 1px solid #ddd; padding-bottom: .3em; }
table { width: 100%; border-collapse: collapse; }
td, th { text-align: left; padding: .25em .4em; border-bottom: 1px solid #eee;
         overflow-wrap: anywhere; }
input { font-size: 1em; padding: .3em; width: 60%; }
button { font-size: 1em; padding: .25em .8em; cursor: pointer; }
button.kind[aria-pressed="true"] { background: #b71c1c; color: #fff; }
.badge { display: inline-block; padding: .1em .6em; border-radius: 1em; background: #fff3; }
.offline { background: #ffb300; color: #000; }
.ok { color: #1b5e20; } .bad { color: #b71c1c; font-weight: bold; }
.warn { color: #7a4f00; background: #fff3cd; font-weight: bold; }
h1, p, li { overflow-wrap: anywhere; }
th, td.nowrap { white-space: nowrap; overflow-wrap: normal; }
@media (max-width: 30em) {
  main { padding: .5em; } section { padding: .5em; }
  td, th { padding: .25em .2em; } button { padding: .25em .5em; }
}
#message { font-size: 1.2em; min-height: 1.5em; }
#pin-form input { width: 12em; }
"""

PIN_HTML = (
    HEAD
    + """<body>
<header><h1>合堂 · 分会场签到</h1></header>
<main>
<section>
  <form id="pin-form">
    <h2><label for="pin">请输入会场工作人员口令</label></h2>
    <p><input id="pin" type="password" autocomplete="current-password" required autofocus>
      <button type="submit">进入</button></p>
    <p id="message" class="bad" role="alert"></p>
  </form>
</section>
</main>
<script src="/login.js"></script>
</body>
</html>
"""
)

PIN_JS = """
"use strict";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const form = document.getElementById("pin-form");
const input = document.getElementById("pin");
const message = document.getElementById("message");
form.addEventListener("submit", async event => {
  event.preventDefault();
  let answer = null;
  try {
    const response = await fetch("/login", {method: "POST",
      body: JSON.stringify({pin: input.value}),
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}});
    if (response.ok) {
      location.replace("/");
      return;
    }
    answer = await response.json();
  } catch (e) {
    answer = null;
  }
  message.textContent = (answer && answer.error && answer.error.message) || "本机签到程序没有响应";
  input.value = "";
  input.focus();
});
"""

JS = """
"use strict";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const REASONS = {
  unknown_member: "查无此人", unknown_session: "场次不存在",
  venue_not_in_session: "本会场不在该场次中",
  outside_window: "不在签到时间内", event_id_reused: "事件编号重复", invalid: "数据无效",
  no_session: "当时没有可签到的场次"
};
const STREAM = {idle: "未接收", good: "良好", degraded: "较差", down: "中断"};
// Every time is shown in the server's zone (HETANG_TIMEZONE, sent with the schedule), never the
// browser's: the agent's messages use it too.
const DEFAULT_ZONE = "Asia/Shanghai";
let zone = DEFAULT_ZONE;
let current = null;
let upcoming = null;
let presentCodes = new Set();
let searches = 0;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}
function time(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString("zh-CN", {hourCycle: "h23", timeZone: zone});
}
function useZone(name) {
  try {
    new Intl.DateTimeFormat("zh-CN", {timeZone: name});
    zone = name;
  } catch (e) {
    zone = DEFAULT_ZONE;  // a zone this browser does not know
  }
}
function noSession() {
  let text = "当前没有可签到的场次";
  if (upcoming) {
    text += "（下一场：" + upcoming.title + "，" + time(upcoming.starts_at) +
      " 开始，开始前 30 分钟可签到）";
  }
  return text;
}
function reason(text) {
  if (!text) return "";
  if (text.startsWith("http_")) return "服务器拒收整批（" + text + "）";
  return REASONS[text] || text;
}
async function call(url, options) {
  const response = await fetch(url, options);
  if (response.status === 401) {  // the staff PIN is asked (again: the agent restarted)
    location.reload();
    return new Promise(() => {});  // never settles: the page is going away
  }
  return response.json();
}
async function post(url, body) {
  return call(url, {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}});
}
function say(receipt) {
  const box = document.getElementById("message");
  box.textContent = receipt.message || (receipt.error && receipt.error.message) || "操作失败";
  box.className = receipt.redundant ? "warn" : receipt.queued && receipt.known ? "ok" : "bad";
}
function notDone(code, kind) {
  return code + " 未" + (kind === "out" ? "签退" : "签到");
}
// A click on 签到/签退: true when it was journaled. The rows and 在场人员 are read again before
// the answer is shown, so that the three never disagree.
async function check(code, kind, field) {
  if (!current) await refresh();
  if (!current) {
    say({message: noSession() + "：" + notDone(code, kind)});
    return false;
  }
  let receipt;
  try {
    receipt = await post("/checkins", {session_id: current.id, code, kind, field});
  } catch (e) {  // the agent did not answer: nothing was recorded, and the clerk must know
    say({message: "本机签到程序没有响应：" + notDone(code, kind) + "，请稍后重试"});
    return false;
  }
  await refresh();
  await search();
  say(receipt);
  return Boolean(receipt.queued);
}
function showSession(data) {
  current = data.session;
  upcoming = data.next_session;
  const box = document.getElementById("session");
  if (current) {
    box.textContent = current.title + "（" + time(current.starts_at) + " — " +
      time(current.ends_at) + "，名单 " + current.roster_size + " 人）";
  } else if (data.next_session) {
    box.textContent = "当前没有可签到的场次。下一场：" + data.next_session.title + "，" +
      time(data.next_session.starts_at);
  } else {
    box.textContent = "当前没有可签到的场次，日程中也没有后续场次。";
  }
}
function showPresent(list) {
  const ul = document.getElementById("present");
  ul.replaceChildren(...list.map(a => el("li", (a.name || "名单外") + "（" + a.code + "）" +
    time(a.since) + " 起")));
  document.getElementById("present-count").textContent = list.length + " 人";
  presentCodes = new Set(list.map(a => a.code));
  markRows();
}
function markRows() {
  for (const tr of document.querySelectorAll("#roster tr")) {
    const inside = presentCodes.has(tr.dataset.code);
    const cell = tr.querySelector(".state");
    cell.textContent = inside ? "在场" : "未在场";
    cell.className = "state" + (inside ? " ok" : "");
  }
}
function showRejected(data) {
  const body = document.getElementById("rejected");
  body.replaceChildren(...data.rejected.map(r => {
    const tr = el("tr");
    tr.append(el("td", r.code), el("td", r.kind === "out" ? "签退" : "签到", "nowrap"),
      el("td", time(r.at), "nowrap"), el("td", reason(r.reason), "bad"));
    return tr;
  }));
  document.getElementById("rejected-count").textContent = data.rejected_count + " 条";
}
function showStream(stream) {
  let text = STREAM[stream.state] || stream.state;
  if (stream.state !== "idle" && stream.fps !== undefined) {
    text += " · " + stream.fps + " 帧/秒 · " + stream.bitrate_kbps + " kbps · 丢包 " +
      stream.loss_pct + "%";
  }
  const box = document.getElementById("stream");
  box.textContent = text;
  box.className = stream.state === "down" || stream.state === "degraded" ? "badge offline" : "";
}
async function refresh() {
  let data;
  try {
    data = await call("/status.json");
  } catch (e) {
    document.getElementById("link").textContent = "本机签到程序没有响应";
    return;
  }
  useZone(data.timezone || DEFAULT_ZONE);
  document.getElementById("venue").textContent = data.venue ? "· " + data.venue.name : "";
  const link = document.getElementById("link");
  link.textContent = data.online ? "已连接服务器" : (data.problem || "正在连接服务器…");
  link.className = "badge" + (data.online ? "" : " offline");
  document.getElementById("queue").textContent = data.queue_depth;
  document.getElementById("last-sync").textContent = data.last_sync ? time(data.last_sync) : "从未";
  showStream(data.stream);
  for (const b of document.querySelectorAll("button.kind")) {
    b.setAttribute("aria-pressed", String(b.dataset.kind === data.scan_kind));
  }
  const before = current && current.id;
  showSession(data);
  showPresent(data.present);
  showRejected(data);
  if ((current && current.id) !== before) search();
}
function rosterRow(m) {
  const tr = el("tr");
  tr.dataset.code = m.member_no;
  tr.dataset.name = m.name;
  const actions = el("td");
  const checkIn = el("button", "签到");
  checkIn.onclick = () => check(m.member_no, "in", "member_no");
  const checkOut = el("button", "签退");
  checkOut.onclick = () => check(m.member_no, "out", "member_no");
  actions.append(checkIn, " ", checkOut);
  tr.append(el("td", m.name), el("td", m.member_no), el("td", "", "state"), actions);
  return tr;
}
async function search() {
  const mine = ++searches;  // an older answer arriving late must not replace a newer one
  const body = document.getElementById("roster");
  const note = document.getElementById("roster-note");
  const q = document.getElementById("search").value.trim();
  const data = current ? await call("/roster?q=" + encodeURIComponent(q)) : null;
  if (mine !== searches) return;
  if (!data || data.session_id === null) {
    body.replaceChildren();
    note.textContent = noSession() + "，名单无法查找。";
    note.className = "bad";
    return;
  }
  // A member's row already shown is kept, not made again: a click on it that is under way when
  // this answer comes (typing, then clicking at once) still reaches its button.
  const shown = new Map([...body.children].map(tr => [tr.dataset.code, tr]));
  body.replaceChildren(...data.members.map(m => {
    const tr = shown.get(m.member_no);
    return tr && tr.dataset.name === m.name ? tr : rosterRow(m);
  }));
  markRows();
  note.className = data.total ? "" : "bad";
  if (!data.total) {
    note.textContent = q ? "名单中没有与“" + q + "”相符的人员" : "本场次名单是空的";
  } else if (data.total > data.members.length) {
    note.textContent = "共 " + data.total + " 人相符，显示前 " + data.members.length +
      " 人，请输入更多文字";
  } else {
    note.textContent = q ? "共 " + data.total + " 人相符" : "名单共 " + data.total + " 人";
  }
}
let timer = null;
document.getElementById("search").addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(search, 200);
});
document.getElementById("walk-in").addEventListener("submit", async event => {
  event.preventDefault();
  const input = document.getElementById("walk-in-no");
  const code = input.value.trim();
  if (!code) {
    say({message: "请先输入党员编号"});
  } else if (await check(code, "in", "member_no")) {
    input.value = "";  // kept when nothing was recorded, to correct or try again
  }
  input.focus();
});
for (const b of document.querySelectorAll("button.kind")) {
  b.addEventListener("click", async () => {
    await post("/scan-kind", {kind: b.dataset.kind});
    refresh();
  });
}
refresh().then(search);
setInterval(refresh, 1000);  // a phone's self check-in shows within a second or two
"""


def render_page(csrf_token: str) -> str:
    """The page with this process's CSRF token."""
    return HTML.replace("{csrf}", escape(csrf_token, quote=True))


def render_pin_form(csrf_token: str) -> str:
    """The staff PIN form with this process's CSRF token."""
    return PIN_HTML.replace("{csrf}", escape(csrf_token, quote=True))

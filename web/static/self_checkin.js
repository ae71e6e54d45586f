"use strict";
// The phone page: send the member's number and ID digits with the scan pass; say the answer.
const form = document.getElementById("self-checkin");
const answer = document.getElementById("answer");
let kind = "in";
for (const button of form.querySelectorAll("button[name=kind]")) {
  button.addEventListener("click", () => { kind = button.value; });
}
form.addEventListener("submit", async event => {
  event.preventDefault();
  const buttons = form.querySelectorAll("button");
  buttons.forEach(b => { b.disabled = true; });
  answer.className = "";
  answer.textContent = "…";
  try {
    const response = await fetch("/api/v1/self-checkins", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify({
        pass: form.dataset.pass,
        member_no: document.getElementById("member-no").value,
        id_last4: document.getElementById("id-last4").value,
        kind: kind
      })
    });
    const data = await response.json();
    if (response.ok) {
      answer.className = "done";
      answer.textContent = (data.kind === "in" ? "签到成功：" : "签退成功：") + data.name +
        "（" + data.member_no + "） " + new Date(data.at).toLocaleTimeString("zh-CN", {timeZone: form.dataset.zone, hour12: false});
    } else {
      answer.className = "failed";
      answer.textContent = data.error ? data.error.message : ("HTTP " + response.status);
    }
  } catch (e) {
    answer.className = "failed";
    answer.textContent = "网络不通，请稍后再试，或请工作人员用扫码枪签到";
  } finally {
    buttons.forEach(b => { b.disabled = false; });
  }
});

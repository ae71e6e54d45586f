"""The webhooks page in Chinese: registering an endpoint shows its secret once, the list shows
only its first characters; the delivery log lists what was sent, and 重新发送 sends it again
with the same message id, signed."""

from __future__ import annotations

import re

from multidict import MultiDict

from tests.support.browser import Browser, give_password
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.matrix_seed import make_session, seed_matrix
from tests.support.webhooks import Receiver, all_decided, wait_for
from tests.support.world import World


async def test_an_admin_registers_an_endpoint_and_replays_a_delivery_on_the_page(
    client: Client, db: Db, world: World, receiver: Receiver
) -> None:
    await seed_matrix(db)
    await give_password(db, "admin-a")
    url = await receiver.start()
    async with Browser(client) as admin:
        csrf = await admin.signed_in("admin-a")
        async with admin.request("GET", "/webhooks") as page:
            html = await page.text()
        assert page.status == 200 and "添加回调地址" in html and "场次已开始" in html
        bad = MultiDict([("csrf_token", csrf), ("url", "ftp://x"), ("org_code", "a1")])
        async with admin.request("POST", "/webhooks", data=bad) as page:
            html = await page.text()
        assert page.status == 422 and "须为 http:// 或 https:// 地址" in html
        form = MultiDict(
            [
                ("csrf_token", csrf),
                ("url", url),
                ("org_code", "a1"),
                ("events", "session.scheduled"),
                ("events", "session.started"),
            ]
        )
        async with admin.request("POST", "/webhooks", data=form) as page:
            html = await page.text()
        assert page.status == 200, html[:500]
        found = re.search(r'id="new-secret">(whsec_[^<]+)<', html)
        assert found, html[:2000]
        secret = found.group(1)
        receiver.secrets.append(secret)
        async with admin.request("GET", "/webhooks") as page:
            html = await page.text()
        assert secret not in html and secret[6:12] in html
        assert "<td>西泉镇党委</td>" in html  # the organization by its name, not its code
        await make_session(db, "live")
        await wait_for(lambda: len(receiver.received) >= 2, "two events")
        endpoint = re.search(r"/webhooks/(\d+)/deliveries", html)
        assert endpoint
        await wait_for(lambda: all_decided(db, endpoint.group(1)), "the outcomes to be stored")
        log_path = f"/webhooks/{endpoint.group(1)}/deliveries"
        async with admin.request("GET", log_path) as page:
            html = await page.text()
        assert "投递记录" in html and "已送达" in html and "重新发送" in html
        replay = re.search(r'action="(/webhooks/\d+/deliveries/\d+/replay)"', html)
        assert replay
        async with admin.request("POST", replay.group(1), data={"csrf_token": csrf}) as page:
            html = await page.text()
        assert page.status == 200 and "该事件即将重新发送。" in html
        await wait_for(lambda: len(receiver.received) >= 3, "the replay")
    assert receiver.unverified == []
    assert receiver.received[2].msg_id == receiver.received[1].msg_id  # the newest, again

"""A student's page without a browser: a client of the page's websocket protocol.

In a classroom every student's browser runs on the student's own machine. Benchmarked
on the server's machine, 30 Chromium pages would take most of its cores for themselves,
so ``classroom.py --clients wire`` opens the sessions with this client instead. It does
what the page does that the server can notice, and nothing else:

- it loads ``/app`` over HTTP (the server builds the session's document then), opens
  the session's websocket with the page's token and origin, pulls the document and says
  the document is ready (Panel then connects the lab);
- it presses Play (a button click event), and acknowledges every frame with the frame
  number, as the page's frame clock does after painting, so the server's pacing holds;
  like a browser, it sends each message at once (no Nagle delay on its socket);
- it can move the critic's learning rate slider and time the first frame made with the
  new setting.

It does not decode the frames' arrays (their bytes are received and dropped) and does
not send what Bokeh's browser side sends back on its own (the axis ranges it computes,
the sizes of the plots): ``classroom.py`` measures the server's CPU time per frame both
ways, so the difference is on record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
import urllib.request
import uuid

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

TOKEN = re.compile(r'"token":\s*"([^"]+)"')
SHARE_CODE = re.compile(r"Live: code ([A-Z0-9]{6})")
LR_D_LABEL = "lr d:"


def _header(msgtype: str) -> str:
    return json.dumps({"msgid": uuid.uuid4().hex.upper(), "msgtype": msgtype})


def _event(name: str, model_id: str | None = None, data=None) -> dict:
    entries = []
    if model_id is not None:
        entries.append(["model", {"id": model_id}])
    if data is not None:
        entries.append(["data", data])
    values = {"type": "map", "entries": entries} if entries else {"type": "map"}
    return {
        "kind": "MessageSent",
        "msg_type": "bokeh_event",
        "msg_data": {"type": "event", "name": name, "values": values},
    }


@contextlib.contextmanager
def _one_segment(sock):
    """Writes made inside leave as one TCP segment (Linux's TCP_CORK; elsewhere as
    they are), so that a message's three parts reach the server together, not in
    three wake-ups of its event loop."""
    cork = getattr(socket, "TCP_CORK", None)
    if cork is not None:
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    try:
        yield
    finally:
        if cork is not None:
            sock.setsockopt(socket.IPPROTO_TCP, cork, 0)


def _objects(node):
    """Every serialized Bokeh object in a document's JSON, depth first."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "id" in node:
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


class WireClient:
    """One session of ``url`` (``http://host:port/app``), driven by the protocol."""

    def __init__(self, url: str, follow: str | None = None):
        self.url = url + (f"?follow={follow}" if follow else "")
        self.origin = url.split("/app")[0]
        self.frames = 0
        self.frame_times: list[float] = []  # when each frame arrived (perf_counter)
        self.step = 0
        self.version = 0
        self.refused = False
        self.readout = ""  # the top bar's line (step, speed, "sharing the server with...")
        self.version_seen: dict[int, float] = {}  # settings version -> first frame time
        self._ws = None
        self._clock_data = None  # the frame clock's data model (its frame, step, ...)
        self._clock = None  # the frame clock itself (acknowledgements go to it)
        self._buttons: dict[str, str] = {}  # label -> id
        self.share_code = asyncio.Future()
        self._lr_slider = None
        self._lr_value = None
        self._objects: dict[str, dict] = {}
        self.ready = asyncio.Event()

    # ------------------------------------------------------------------ connection
    async def open(self) -> None:
        html = await asyncio.to_thread(self._get_page)
        token = TOKEN.search(html).group(1)
        ws_url = self.origin.replace("http", "ws", 1) + "/app/ws"
        request = HTTPRequest(
            ws_url, headers={"Origin": self.origin, "Sec-WebSocket-Protocol": f"bokeh, {token}"}
        )
        self._ws = await websocket_connect(request, max_message_size=1 << 30)
        # as browsers do (TCP_NODELAY): an acknowledgement goes out as three small
        # writes, and with Nagle's algorithm the last two waited for the server's
        # delayed ACK, about 40 ms on Linux, a stall per frame that no page has
        self._ws.stream.set_nodelay(True)
        await self._read_message()  # ACK
        await self._send("PULL-DOC-REQ", {})
        _, content = await self._read_message()
        self._index(content["doc"])
        await self._send("PATCH-DOC", {"events": [_event("document_ready")]})
        asyncio.get_running_loop().create_task(self._listen())

    def _get_page(self) -> str:
        with urllib.request.urlopen(self.url, timeout=600) as response:
            return response.read().decode()

    async def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    async def _send(self, msgtype: str, content: dict) -> None:
        # the three parts are queued with no await between them: no other message
        # can come between, and they leave together
        with _one_segment(self._ws.stream.socket):
            written = [
                self._ws.write_message(part)
                for part in (_header(msgtype), "{}", json.dumps(content))
            ]
        for future in written:
            await future

    async def _read_message(self) -> tuple[dict, dict]:
        """One message: header, metadata, content, then its buffers (dropped)."""
        header = json.loads(await self._frame())
        await self._frame()  # metadata
        content = json.loads(await self._frame())
        for _ in range(2 * header.get("num_buffers", 0)):  # a header and bytes each
            await self._frame()
        return header, content

    async def _frame(self):
        if self._ws is None:  # closed by this client meanwhile
            raise ConnectionError("the websocket is closed")
        part = await self._ws.read_message()
        if part is None:
            raise ConnectionError("the server closed the websocket")
        return part

    # ------------------------------------------------------------------ the document
    def _index(self, doc: dict) -> None:
        for obj in _objects(doc):
            self._objects[obj["id"]] = obj
        for obj in self._objects.values():
            attrs = obj.get("attributes", {})
            data = attrs.get("data")
            if isinstance(data, dict) and self._objects.get(data.get("id"), {}).get(
                "name", ""
            ).startswith("FrameClock"):
                self._clock, self._clock_data = obj["id"], data["id"]
            elif obj["name"].endswith("Button") and isinstance(attrs.get("label"), str):
                self._buttons.setdefault(attrs["label"], obj["id"])  # the lab's come first
            elif obj["name"].endswith("Column") and len(attrs.get("children", [])) == 2:
                div, slider = (self._objects.get(c.get("id"), {}) for c in attrs["children"])
                text = div.get("attributes", {}).get("text", "")
                if slider.get("name", "").endswith("Slider") and text.startswith(LR_D_LABEL):
                    self._lr_slider = slider["id"]
                    self._lr_value = slider["attributes"].get("value", 0)

    async def _listen(self) -> None:
        try:
            while self._ws is not None:
                header, content = await self._read_message()
                if header["msgtype"] == "PATCH-DOC":
                    await self._patched(content)
        except (ConnectionError, asyncio.CancelledError):
            return

    async def _patched(self, content: dict) -> None:
        frame = None
        for event in content.get("events", []):
            if event.get("kind") != "ModelChanged":
                continue
            attr, new = event["attr"], event["new"]
            shared = SHARE_CODE.search(new) if isinstance(new, str) else None
            if shared and not self.share_code.done():
                self.share_code.set_result(shared.group(1))
            if event["model"]["id"] != self._clock_data:
                continue
            if attr == "frame":
                frame = new
            elif attr == "step":
                self.step = new
            elif attr == "version":
                self.version = new
            elif attr == "readout":
                self.readout = str(new)
                self.refused = self.refused or "server is full" in self.readout
        if frame is None:
            return
        now = time.perf_counter()
        self.frames += 1
        self.frame_times.append(now)
        self.version_seen.setdefault(self.version, now)
        self.ready.set()
        await self._send("PATCH-DOC", {"events": [_event("data_event", self._clock, frame)]})

    # ------------------------------------------------------------------ the user
    async def press(self, label: str) -> None:
        """Click the lab's button labelled ``label``."""
        if label not in self._buttons:
            raise RuntimeError(f"no {label!r} button in the document")
        await self._send("PATCH-DOC", {"events": [_event("button_click", self._buttons[label])]})

    async def press_play(self) -> None:
        await self.press("Play")

    async def share_live(self) -> str:
        """Press "Share live" and return the code the lab shows."""
        await self.press("Share live")
        return await asyncio.wait_for(self.share_code, 60)

    async def nudge_lr_d(self, up: bool) -> tuple[int, float]:
        """Move the critic's learning rate slider one notch; (version before, when)."""
        self._lr_value += 1 if up else -1
        change = {"kind": "ModelChanged", "model": {"id": self._lr_slider}, "attr": "value",
                  "new": self._lr_value}  # fmt: skip
        before, t0 = self.version, time.perf_counter()
        await self._send("PATCH-DOC", {"events": [change]})
        return before, t0

    def latency_ms(self, before: int, t0: float) -> float | None:
        """Time from a change to the first frame made with a newer settings version."""
        after = [t for v, t in self.version_seen.items() if v > before and t >= t0]
        return 1000 * (min(after) - t0) if after else None

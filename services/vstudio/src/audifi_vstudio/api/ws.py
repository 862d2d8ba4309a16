"""`WS /vstudio/sessions/{session_id}/ws`: a client's live connection to a session room.

The protocol (JSON text frames, camelCase; the seed's "WebSocket Protocol"):

* The client sends `Authorization: Bearer <access token>` with the handshake. Without a valid
  token the server accepts and at once closes with code 4401.
* On connect the server sends `{"type": "presence", "sessionId", "users": [{"userId",
  "displayName"}]}`: the users in the room, one entry per user however many connections (the
  first 200 connections' users; a bigger room's frame adds `count`, its connections), then,
  when the session exists, the `snapshot` of its decisions (frames.py).
* `{"type": "join", "userId"?, "displayName"?}` puts the caller into the room; every member
  (the sender too) gets `{"type": "user_joined", "userId", "displayName"}`, with the user id
  from the verified token: a `userId` the client claims is ignored. Joins and leaves are told
  at a bounded rate (presence.py): several at once arrive as one `presence_delta` frame
  (`joined`, `left`, the room's `count`), which names at most 50 users each way; a joiner it
  does not name gets its own `user_joined`.
* `{"type": "ping"}` is answered `{"type": "pong"}`.
* When a user's last connection to the room ends, the others get `{"type": "user_left",
  "userId"}`.
* `{"type": "vote", "decisionId", "choice"}` votes as `POST /vstudio/sessions/{id}/vote`
  does: the voter gets `{"type": "vote_ack", "decisionId", "choice", "weight"}` (or an `error`
  frame with the refusal's code and the `decisionId`); every member gets `vote_update`,
  coalesced (frames.py, with the other decision frames: `decision_opened`, `decision_closed`,
  `session_locked`).
* Any other frame, or one that does not decode, is answered to its sender only with
  `{"type": "error", "code": "VALIDATION_ERROR" | "NOT_SUPPORTED", "message"}`; the
  connection stays open.

Every frame for one client (room frames and replies alike) waits in one bounded queue; a client
that lets it fill up is dropped with close code 1013 (try again later), so a slow reader costs
the server a fixed amount of memory, never a growing one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import msgspec
import structlog
from audifi_kit.errors import DomainError, Unauthorized
from audifi_kit.http.auth import PUBLIC_OPT, Identity, TokenVerifier, bearer_token
from audifi_kit.http.revocations import REVOCATIONS_STATE_KEY, session_revoked
from audifi_kit.server import SEND_TEXT_NOW, prepared_text_frame
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from audifi_vstudio.adapters.rooms import Member, Rooms
from audifi_vstudio.domain.session import SessionNotFound
from audifi_vstudio.frames import VoteAck
from audifi_vstudio.frames import encode as encode_frame
from audifi_vstudio.presence import PresenceAnnouncer
from audifi_vstudio.studio import Studio

log = structlog.get_logger("audifi.vstudio")

ROOMS_STATE_KEY = "rooms"
STUDIO_STATE_KEY = "studio"
PRESENCE_STATE_KEY = "presence_announcer"
# Votes of one client waiting to be recorded; one more is refused (RATE_LIMITED).
VOTES_WAITING = 16
# A presence frame names at most this many users; a bigger room's also says its `count`.
PRESENCE_LIMIT = 200
LIMITS_STATE_KEY = "connection_limits"
JWKS_STATE_KEY = "jwks"  # where the kit's service factory keeps auth's JWKS keys

CLOSE_UNAUTHORIZED = 4401
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_INTERNAL_ERROR = 1011


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    # Frames waiting for one client; one more and the client is dropped (1013).
    send_queue: int = 256
    # The largest frame a client may send (bytes of UTF-8 JSON).
    frame_bytes: int = 4096
    # How long a dropped client's close handshake may take before the connection is cut.
    close_timeout: float = 5.0


# ------------------------------------------------------------------------------ frames


class ClientFrame(msgspec.Struct, tag_field="type", rename="camel", frozen=True):
    """A frame a client sends; its `type` names which."""


class Join(ClientFrame, tag="join"):
    user_id: str | None = None  # the seed's clients send it; the token decides who joins
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class Ping(ClientFrame, tag="ping"):
    pass


class Vote(ClientFrame, tag="vote"):
    decision_id: str
    choice: str


class ServerFrame(msgspec.Struct, tag_field="type", rename="camel", frozen=True):
    """A frame the server sends."""


class PresentUser(msgspec.Struct, rename="camel", frozen=True):
    user_id: str
    display_name: str | None


class Presence(ServerFrame, tag="presence", omit_defaults=True):
    session_id: UUID
    users: list[PresentUser]  # the first PRESENCE_LIMIT connections' users, in join order
    count: int | None = None  # a big room's connections, when `users` is cut short


class UserJoined(ServerFrame, tag="user_joined"):
    user_id: str
    display_name: str | None


class UserLeft(ServerFrame, tag="user_left"):
    user_id: str


class Pong(ServerFrame, tag="pong"):
    pass


class ErrorFrame(ServerFrame, tag="error", omit_defaults=True):
    code: str
    message: str
    decision_id: str | None = None


class _Kind(msgspec.Struct):
    type: str


_client_frames = msgspec.json.Decoder(Join | Ping | Vote)
_kind = msgspec.json.Decoder(_Kind)
_encoder = msgspec.json.Encoder()
KNOWN_TYPES = frozenset(("join", "ping", "vote"))


class FrameRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def decode_client_frame(raw: bytes) -> Join | Ping | Vote:
    """The client's frame, or `FrameRefused` saying what is wrong with it."""
    try:
        return _client_frames.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        error = exc
    try:
        kind = _kind.decode(raw).type
    except (msgspec.ValidationError, msgspec.DecodeError):
        kind = None
    if kind is not None and kind not in KNOWN_TYPES:
        shown = kind if len(kind) <= 32 else f"{kind[:32]}..."
        raise FrameRefused("NOT_SUPPORTED", f"Frames of type {shown!r} are not supported")
    raise FrameRefused("VALIDATION_ERROR", f"Invalid frame: {error}")


def encode(frame: ServerFrame) -> bytes:
    return _encoder.encode(frame)


# -------------------------------------------------------------------------- connection


class Overflowed(Exception):
    """The client let its queue of frames fill up."""


class SendQueue:
    """The frames waiting to be sent to one client: at most `limit`, else it overflows.

    A deque and one waiter (the connection's sender): a few hundred bytes a socket, where an
    asyncio.Queue with an Event and a task watching it cost kilobytes. On overflow the frames
    are dropped and `on_overflow` runs (the connection cancels its sender, which may be stuck
    writing to a client that does not read); `next` raises `Overflowed` from then on."""

    __slots__ = ("_frames", "_limit", "_waiter", "on_overflow", "overflowed")

    def __init__(self, limit: int) -> None:
        self._frames: collections.deque[bytes] = collections.deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self.on_overflow: Callable[[], Any] | None = None
        self.overflowed = False

    def offer(self, frame: bytes) -> None:
        if self.overflowed:
            return
        if len(self._frames) >= self._limit:
            self.overflowed = True
            self._frames.clear()
            if self.on_overflow is not None:
                self.on_overflow()
        else:
            self._frames.append(frame)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def idle(self) -> bool:
        """Nothing waits and the sender waits for the next frame (it is not mid-send): a
        frame written now keeps its place."""
        return self._waiter is not None and not self._frames and not self.overflowed

    async def next(self) -> bytes:
        while not self._frames:
            if self.overflowed:
                raise Overflowed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._frames.popleft()


class RoomConnection:
    """One client in one session room, from the presence frame to its leaving."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        session_id: UUID,
        identity: Identity,
        rooms: Rooms,
        limits: ConnectionLimits,
        studio: Studio | None = None,
        announcer: PresenceAnnouncer | None = None,
    ) -> None:
        self.studio = studio
        self.announcer = announcer
        self.socket = socket
        self.session_id = session_id
        self.identity = identity
        self.rooms = rooms
        self.limits = limits
        self.connection_id = uuid.uuid4().hex
        self.send_queue = SendQueue(limits.send_queue)
        # The kit's connections write a room's frame, prepared once, straight to the socket.
        self._send_now = socket.scope.get("extensions", {}).get(SEND_TEXT_NOW)
        # The client's votes waiting to be recorded, and the task recording them in order:
        # made with the first vote (most members of a room never vote).
        self.votes: collections.deque[Vote] = collections.deque()
        self._voting: asyncio.Task[None] | None = None
        self.member: Member | None = None

    async def serve(self) -> None:
        close_code: int | None = None
        # Subscribed before presence is read: a join in between is seen twice, never missed.
        async with self.rooms.subscribe(self.session_id, self._room_frame):
            try:
                first = [encode(await self._presence())]
                if (snapshot := await self._snapshot()) is not None:
                    first.append(snapshot)
                close_code = await self._exchange(first)
            finally:
                await self._leave()
        if close_code == CLOSE_TRY_AGAIN_LATER:
            await close(self.socket, close_code, "Frames were not read in time", self.limits)

    def _room_frame(self, frame: bytes) -> None:
        """A frame to everyone in the room: written at once when the socket is idle, else
        queued behind what waits (its order kept either way)."""
        if self._send_now is not None and self.send_queue.idle:
            if self._send_now(_prepared(frame)):
                return
        self.send_queue.offer(frame)

    async def _exchange(self, first: list[bytes]) -> int | None:
        """Frames both ways, presence first, until the client leaves (None) or falls behind
        (1013)."""
        receiving = asyncio.create_task(self._receive_frames())
        sending = asyncio.create_task(self._send_frames(first))
        self.send_queue.on_overflow = sending.cancel
        tasks = (receiving, sending)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.send_queue.on_overflow = None
            every = [task for task in (*tasks, self._voting) if task is not None]
            for task in every:
                task.cancel()
            await asyncio.gather(*every, return_exceptions=True)
        if self.send_queue.overflowed:
            log.info("slow client dropped", session_id=str(self.session_id))
            return CLOSE_TRY_AGAIN_LATER
        if receiving in done and (error := receiving.exception()) is not None:
            if not isinstance(error, WebSocketDisconnect):
                raise error
        if sending in done and not sending.cancelled() and (error := sending.exception()):
            # The client went away mid-send (the server may have closed the socket itself:
            # a keepalive ping unanswered), anything else is ours.
            if not isinstance(error, OSError | WebSocketDisconnect) and not _closed(error):
                raise error
        return None

    async def _cast_votes(self) -> None:
        """The client's votes, in the order sent, while frames keep being read: a vote
        waiting on its group commit must not stop the socket from answering pings. Ends
        when none waits (the next vote starts it again)."""
        try:
            while self.votes:
                frame = self.votes[0]
                try:
                    await self._vote(frame)
                except Exception:  # ours (the store down): the voter hears it, the socket stays
                    log.exception("a vote failed", session_id=str(self.session_id))
                    self._reply(
                        ErrorFrame(
                            code="INTERNAL",
                            message="The vote was not recorded: try again",
                            decision_id=frame.decision_id,
                        )
                    )
                self.votes.popleft()
        finally:
            self._voting = None

    async def _receive_frames(self) -> None:
        while True:
            message = await self.socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            raw = text.encode() if text is not None else message.get("bytes") or b""
            await self._handle(raw)

    async def _handle(self, raw: bytes) -> None:
        if len(raw) > self.limits.frame_bytes:
            message = f"A frame may hold at most {self.limits.frame_bytes} bytes"
            self._reply(ErrorFrame(code="VALIDATION_ERROR", message=message))
            return
        try:
            frame = decode_client_frame(raw)
        except FrameRefused as refused:
            self._reply(ErrorFrame(code=refused.code, message=refused.message))
            return
        match frame:
            case Ping():
                self._reply(Pong())
            case Join():
                await self._join(frame)
            case Vote():
                if len(self.votes) >= VOTES_WAITING:  # voting faster than votes are recorded
                    self._reply(
                        ErrorFrame(
                            code="RATE_LIMITED",
                            message="Too many votes waiting: wait for their vote_ack",
                            decision_id=frame.decision_id,
                        )
                    )
                    return
                self.votes.append(frame)
                if self._voting is None:
                    self._voting = asyncio.create_task(self._cast_votes())

    async def _vote(self, frame: Vote) -> None:
        if self.studio is None:
            self._reply(ErrorFrame(code="UNAVAILABLE", message="Voting is starting up"))
            return
        try:
            decision_id = UUID(frame.decision_id)
        except ValueError:
            self._reply(
                ErrorFrame(
                    code="DECISION_NOT_FOUND",
                    message="Decision not found",
                    decision_id=frame.decision_id,
                )
            )
            return
        try:
            decision = await self.studio.vote(
                self.session_id, decision_id, account_id=self.identity.user_id, choice=frame.choice
            )
        except DomainError as refused:
            self._reply(
                ErrorFrame(
                    code=refused.code, message=refused.message, decision_id=frame.decision_id
                )
            )
            return
        weight = decision.weight_of(self.studio.voter(decision_id, self.identity.user_id))
        self.send_queue.offer(
            encode_frame(VoteAck(decision_id=decision_id, choice=frame.choice, weight=weight))
        )

    async def _join(self, frame: Join) -> None:
        user_id = self.identity.user_id
        # Set first: should the join be interrupted half-way, leaving still takes it back.
        self.member = Member(self.connection_id, user_id, frame.display_name)
        await self.rooms.join(self.session_id, self.member)
        if self.announcer is not None:  # told with others' changes, at a bounded rate
            self.announcer.joined(
                self.session_id, user_id, frame.display_name, tell=self.send_queue.offer
            )
        else:
            joined = UserJoined(user_id=user_id, display_name=frame.display_name)
            await self.rooms.broadcast(self.session_id, encode(joined))

    async def _leave(self) -> None:
        if self.member is None:
            return
        user_id, self.member = self.member.user_id, None
        try:
            await self.rooms.leave(self.session_id, self.connection_id)
            # Another tab of the same user keeps the user in the room.
            if not await self.rooms.has_user(self.session_id, user_id):
                if self.announcer is not None:
                    self.announcer.left(self.session_id, user_id)
                else:
                    await self.rooms.broadcast(self.session_id, encode(UserLeft(user_id=user_id)))
        except Exception:  # the entry expires on its own; the others miss one user_left
            log.warning("leaving session failed", session_id=str(self.session_id), exc_info=True)

    async def _presence(self) -> Presence:
        members = await self.rooms.presence(self.session_id, PRESENCE_LIMIT)
        users = _present_users(members)
        count = None
        if len(members) == PRESENCE_LIMIT:  # perhaps cut short: say how many there are
            count = await self.rooms.count(self.session_id)
        return Presence(session_id=self.session_id, users=users, count=count)

    async def _snapshot(self) -> bytes | None:
        """The session's decisions, for a client that just connected (None: no session)."""
        if self.studio is None:
            return None
        try:
            return await self.studio.snapshot_frame(self.session_id)
        except SessionNotFound:  # a room with no session behind it: presence only
            return None

    def _reply(self, frame: ServerFrame) -> None:
        self.send_queue.offer(encode(frame))

    async def _send_frames(self, first: list[bytes]) -> None:
        while first:  # let go of them once sent: a big room's presence frame is kilobytes
            await self._send(first.pop(0))
        while True:
            await self._send(await self.send_queue.next())

    async def _send(self, frame: bytes) -> None:
        await self.socket.send_data(frame.decode(), mode="text")


# The last room frame prepared: a broadcast hands the same bytes to every subscriber.
_last_prepared: tuple[bytes, bytes] = (b"", prepared_text_frame(b""))


def _prepared(frame: bytes) -> bytes:
    global _last_prepared
    if _last_prepared[0] is not frame:
        _last_prepared = (frame, prepared_text_frame(frame))
    return _last_prepared[1]


def _present_users(members: list[Member]) -> list[PresentUser]:
    """One entry per user, in the order of their first connection. A list the rooms hand out
    again while a big room's first members stay the same (`Members`) keeps the answer with it,
    so hundreds of sockets connecting a second do not each rebuild it."""
    memo = getattr(members, "memo", None)
    if memo is not None and (present := memo.get("present_users")) is not None:
        return present  # type: ignore[no-any-return]
    users: dict[str, PresentUser] = {}
    for member in members:
        if member.user_id not in users:
            users[member.user_id] = PresentUser(member.user_id, member.display_name)
    present = list(users.values())
    if memo is not None:
        memo["present_users"] = present
    return present


def _closed(error: BaseException) -> bool:
    """uvicorn's word that the socket was closed already (it sent the close itself)."""
    return isinstance(error, RuntimeError) and "after sending 'websocket.close'" in str(error)


async def close(
    socket: WebSocket[Any, Any, Any], code: int, reason: str, limits: ConnectionLimits
) -> None:
    """Close the connection if it is still there, without waiting long on a client not reading."""
    with contextlib.suppress(TimeoutError, OSError, WebSocketDisconnect, RuntimeError):
        await asyncio.wait_for(socket.close(code, reason), limits.close_timeout)


async def authenticate(socket: WebSocket[Any, Any, Any]) -> Identity | None:
    """The caller behind the handshake's bearer token, verified against auth's JWKS, whose
    session has not been revoked."""
    token = bearer_token(socket.scope)
    keys = socket.app.state.get(JWKS_STATE_KEY)
    if token is None or keys is None:
        return None
    try:
        identity = await TokenVerifier(keys).verify(token)
    except Unauthorized as refused:
        log.info("websocket refused", reason=refused.message)
        return None
    revocations = socket.app.state.get(REVOCATIONS_STATE_KEY)
    if (
        revocations is not None
        and identity.session_id is not None
        and await session_revoked(revocations, identity.session_id)
    ):
        log.info("websocket refused", reason="the session has been signed out")
        return None
    return identity


@websocket(
    "/vstudio/sessions/{session_id:uuid}/ws",
    # Public to the kit's AuthMiddleware, which runs for websockets too but refuses before the
    # handshake: the client would see a bare HTTP 403 (uvicorn) or close code 4500 "Internal
    # Server Error", nothing a browser can tell from a network failure. The handler verifies
    # the same token itself and refuses with 4401 after accepting.
    opt={PUBLIC_OPT: True},
)
async def session_room(socket: WebSocket[Any, Any, Any], session_id: FromPath[UUID]) -> None:
    # The rooms and limits read from the app's state, not injected: Litestar resolves two or
    # more dependencies in a task group of their own, a tenth of a big room's opening CPU.
    state = socket.app.state
    rooms: Rooms = state[ROOMS_STATE_KEY]
    limits: ConnectionLimits = state.get(LIMITS_STATE_KEY) or ConnectionLimits()
    identity = await authenticate(socket)
    await socket.accept()
    if identity is None:
        await close(socket, CLOSE_UNAUTHORIZED, "A valid access token is required", limits)
        return
    try:
        studio = socket.app.state.get(STUDIO_STATE_KEY)
        announcer = socket.app.state.get(PRESENCE_STATE_KEY)
        await RoomConnection(socket, session_id, identity, rooms, limits, studio, announcer).serve()
    except Exception:
        log.exception("session room failed", session_id=str(session_id))
        await close(socket, CLOSE_INTERNAL_ERROR, "The session room is unavailable", limits)

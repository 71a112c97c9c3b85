"""Conversations, membership, messages (history and the HTTP send for bots), read, search."""

from __future__ import annotations

from chat.api import views
from chat.api.base import JsonBase, parse_seq
from chat.api.openapi_parts import op
from chat.domain.accounts import AccountService
from chat.domain.conversations import ConversationService
from chat.domain.errors import InvalidRequest
from chat.domain.frames import conversation_dict, message_dict, presence_dict
from chat.domain.messaging import MessagingService
from chat.domain.presence import PresenceService
from chat.metrics import Metrics


class ConversationsApi(JsonBase):
    """Handlers of conversations and their members: they call the ConversationService."""

    conversations: ConversationService

    def initialize(
        self, *, metrics: Metrics, accounts: AccountService, conversations: ConversationService
    ) -> None:
        self.setup(metrics, accounts)
        self.conversations = conversations


class MessagingApi(JsonBase):
    """Handlers of messages, read pointers and search: they call the MessagingService."""

    messaging: MessagingService

    def initialize(
        self, *, metrics: Metrics, accounts: AccountService, messaging: MessagingService
    ) -> None:
        self.setup(metrics, accounts)
        self.messaging = messaging


class PresenceApi(JsonBase):
    """The presence handler: it calls the PresenceService."""

    presence: PresenceService

    def initialize(
        self, *, metrics: Metrics, accounts: AccountService, presence: PresenceService
    ) -> None:
        self.setup(metrics, accounts)
        self.presence = presence


class ConversationsHandler(ConversationsApi):
    route = "/api/v1/conversations"
    docs = {
        "get": op(
            "My conversations, most recent activity first, with last message and unread count",
            None,
            "ConversationList",
            errors=(401,),
        ),
        "post": op(
            "Open a direct conversation (`kind: direct, user_id`; returns the existing "
            "one for the pair) or create a group (`kind: group, title, member_ids`)",
            "NewConversation",
            "Conversation",
            201,
            errors=(400, 401, 404),
        ),
    }

    async def get(self) -> None:
        who = await self.principal()
        summaries = await self.conversations.list_for(who)
        self.send_json({"conversations": [views.summary(s) for s in summaries]})

    async def post(self) -> None:
        who = await self.principal()
        body = self.json_body()
        kind = body.get("kind")
        if kind == "direct":
            conversation = await self.conversations.open_direct(who, body.get("user_id"))
        elif kind == "group":
            conversation = await self.conversations.create_group(
                who, body.get("title"), body.get("member_ids", [])
            )
        else:
            raise InvalidRequest("kind must be 'direct' or 'group'")
        self.send_json(conversation_dict(conversation), 201)


class ConversationHandler(ConversationsApi):
    route = "/api/v1/conversations/{conversation_id}"
    docs = {
        "get": op(
            "One conversation with its members",
            None,
            "Conversation",
            errors=(400, 401, 403, 404),
        )
    }

    async def get(self, conversation_id: str) -> None:
        who = await self.principal()
        conversation = await self.conversations.get(who, conversation_id)
        self.send_json(conversation_dict(conversation))


class MembersHandler(ConversationsApi):
    route = "/api/v1/conversations/{conversation_id}/members"
    docs = {
        "post": op(
            "Owner: add a member to a group",
            "AddMember",
            "Conversation",
            errors=(400, 401, 403, 404, 409),
        )
    }

    async def post(self, conversation_id: str) -> None:
        who = await self.principal()
        body = self.json_body()
        conversation = await self.conversations.add_member(
            who, conversation_id, body.get("user_id")
        )
        self.send_json(conversation_dict(conversation))


class MemberHandler(ConversationsApi):
    route = "/api/v1/conversations/{conversation_id}/members/{user_id}"
    docs = {
        "delete": op(
            "Owner: remove a member; anyone: remove yourself (leave)",
            None,
            None,
            204,
            errors=(400, 401, 403, 404),
        )
    }

    async def delete(self, conversation_id: str, user_id: str) -> None:
        who = await self.principal()
        await self.conversations.remove_member(who, conversation_id, user_id)
        self.set_status(204)
        self.finish()


class MessagesHandler(MessagingApi):
    route = "/api/v1/conversations/{conversation_id}/messages"
    docs = {
        "get": op(
            "History page: `before` (newest first page when absent) or `after` a seq, "
            "`limit` <= 100; ascending seq. `archive_unavailable: true`: the archive is down, "
            "the page comes from the recent log only and older pages are unavailable for now",
            None,
            "MessagePage",
            errors=(400, 401, 403),
            query=("before", "after", "limit"),
        ),
        "post": op(
            "Send (bots): idempotent on `client_id`; a retry returns the original "
            "event with `duplicate: true` and status 200",
            "SendMessage",
            "Appended",
            201,
            errors=(400, 401, 403, 413, 429),
        ),
    }

    async def get(self, conversation_id: str) -> None:
        who = await self.principal()
        limit = self.query_int("limit")
        page = await self.messaging.history(
            who,
            conversation_id,
            before=self.query_int("before"),
            after=self.query_int("after"),
            limit=50 if limit is None else limit,
        )
        self.send_json(
            {
                "messages": [message_dict(m) for m in page.messages],
                "archive_unavailable": page.archive_unavailable,
            }
        )

    async def post(self, conversation_id: str) -> None:
        who = await self.principal()
        body = self.json_body()
        result = await self.messaging.send(
            who, conversation_id, body.get("client_id"), body.get("body")
        )
        self.send_json(views.appended(result), 200 if result.duplicate else 201)


class MessageHandler(MessagingApi):
    route = "/api/v1/conversations/{conversation_id}/messages/{seq}"
    docs = {
        "patch": op(
            "Edit your own message (delivered live as an `edit` event)",
            "EditMessage",
            "Appended",
            errors=(400, 401, 403, 404, 413, 429),
        ),
        "delete": op(
            "Delete your own message (delivered live as a `delete` event); "
            "`?client_id=` makes retries idempotent",
            None,
            "Appended",
            errors=(400, 401, 403, 404, 429),
            query=("client_id",),
        ),
    }

    async def patch(self, conversation_id: str, seq: str) -> None:
        who = await self.principal()
        body = self.json_body()
        result = await self.messaging.edit(
            who, conversation_id, parse_seq(seq, "seq"), body.get("client_id"), body.get("body")
        )
        self.send_json(views.appended(result))

    async def delete(self, conversation_id: str, seq: str) -> None:
        who = await self.principal()
        result = await self.messaging.delete(
            who,
            conversation_id,
            parse_seq(seq, "seq"),
            self.get_query_argument("client_id", None, strip=False),
        )
        self.send_json(views.appended(result))


class ReadHandler(MessagingApi):
    route = "/api/v1/conversations/{conversation_id}/read"
    docs = {
        "post": op(
            "Move my read pointer forward to `seq`",
            "ReadPointer",
            "ReadPointer",
            errors=(400, 401, 403),
        )
    }

    async def post(self, conversation_id: str) -> None:
        who = await self.principal()
        pointer = await self.messaging.read_up_to(who, conversation_id, self.json_body().get("seq"))
        self.send_json({"conversation_id": conversation_id, "seq": pointer})


class SearchHandler(MessagingApi):
    route = "/api/v1/search"
    docs = {
        "get": op(
            "Search message text in my conversations (`q`, optional `conversation_id`)",
            None,
            "MessagePage",
            errors=(400, 401, 403),
            query=("q", "conversation_id"),
        )
    }

    async def get(self) -> None:
        who = await self.principal()
        found = await self.messaging.search(
            who,
            self.get_query_argument("q", None),
            self.get_query_argument("conversation_id", None),
        )
        self.send_json({"messages": [message_dict(m) for m in found]})


class PresenceHandler(PresenceApi):
    route = "/api/v1/presence"
    docs = {
        "get": op(
            "Presence of everyone I share a conversation with", None, "PresenceList", errors=(401,)
        )
    }

    async def get(self) -> None:
        who = await self.principal()
        found = await self.presence.of_contacts(who)
        self.send_json({"presence": [presence_dict(p) for p in found]})

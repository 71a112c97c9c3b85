"""Direct and group conversations, membership and the per-user conversation list."""

from __future__ import annotations

from dataclasses import dataclass

from chat.domain import validation
from chat.domain.accounts import Principal
from chat.domain.channels import conversation_channel, user_channel
from chat.domain.clock import Clock, now_ms
from chat.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound
from chat.domain.frames import control_frame, conversation_dict, encode
from chat.domain.ids import new_id
from chat.domain.limits import Limits
from chat.domain.messaging import MessagingService
from chat.domain.models import Conversation, ConversationKind, Member, Message, Role, User
from chat.domain.ports import AccountStore, Bus, ConversationStore


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    conversation: Conversation
    last_seq: int
    last_message: Message | None
    unread: int


class ConversationService:
    def __init__(
        self,
        accounts: AccountStore,
        conversations: ConversationStore,
        messaging: MessagingService,
        bus: Bus,
        clock: Clock,
        limits: Limits,
    ) -> None:
        self._accounts = accounts
        self._conversations = conversations
        self._messaging = messaging
        self._bus = bus
        self._clock = clock
        self._limits = limits

    async def open_direct(self, who: Principal, other_id: object) -> Conversation:
        other = await self._active_user(validation.identifier(other_id, "user_id"))
        if other.id == who.user.id:
            raise InvalidRequest("a direct conversation needs another user", code="invalid_request")
        now = now_ms(self._clock)
        pair = sorted((who.user.id, other.id))
        draft = Conversation(
            id=new_id("c"),
            kind=ConversationKind.DIRECT,
            title="",
            created_by=who.user.id,
            created_at=now,
            members=tuple(Member(uid, Role.MEMBER, 0, now) for uid in pair),
        )
        conversation = await self._conversations.create(draft, direct_key=":".join(pair))
        if conversation.id == draft.id:
            await self._messaging.start_log(conversation.id)
            await self._announce_joined(conversation, pair)
        return conversation

    async def create_group(self, who: Principal, title: object, member_ids: object) -> Conversation:
        name = validation.title(title)
        if not isinstance(member_ids, list) or len(member_ids) >= self._limits.max_group_members:
            raise InvalidRequest("member_ids must be a list of user ids", code="invalid_request")
        ids = {validation.identifier(m, "member_ids[]") for m in member_ids} - {who.user.id}
        for uid in ids:
            await self._active_user(uid)
        now = now_ms(self._clock)
        members = [Member(who.user.id, Role.OWNER, 0, now)]
        members += [Member(uid, Role.MEMBER, 0, now) for uid in sorted(ids)]
        conversation = await self._conversations.create(
            Conversation(
                new_id("c"), ConversationKind.GROUP, name, who.user.id, now, tuple(members)
            ),
            direct_key=None,
        )
        await self._messaging.start_log(conversation.id)
        await self._announce_joined(conversation, [m.user_id for m in members])
        return conversation

    async def get(self, who: Principal, conversation_id: object) -> Conversation:
        cid = validation.identifier(conversation_id, "conversation_id")
        conversation = await self._conversations.get(cid)
        if conversation is None:
            raise NotFound("no such conversation", code="conversation_not_found")
        if conversation.member(who.user.id) is None:
            raise Forbidden("you are not a member of this conversation", code="not_member")
        return conversation

    async def add_member(
        self, who: Principal, conversation_id: object, user_id: object
    ) -> Conversation:
        conversation = await self._owned_group(who, conversation_id)
        user = await self._active_user(validation.identifier(user_id, "user_id"))
        if len(conversation.members) >= self._limits.max_group_members:
            raise Conflict("the group is full", code="group_full")
        added = await self._conversations.add_member(
            conversation.id, user.id, Role.MEMBER, now_ms(self._clock)
        )
        if not added:
            raise Conflict("already a member", code="already_member")
        updated = await self.get(who, conversation.id)
        await self._announce_joined(updated, [user.id])
        await self._publish_members(updated)
        return updated

    async def remove_member(self, who: Principal, conversation_id: object, user_id: object) -> None:
        """Owners remove members; anyone may remove themselves (leave a group)."""
        uid = validation.identifier(user_id, "user_id")
        conversation = await self.get(who, conversation_id)
        if conversation.kind is ConversationKind.DIRECT:
            raise InvalidRequest("members of a direct conversation are fixed", code="direct_fixed")
        if uid != who.user.id:
            me = conversation.member(who.user.id)
            if me is None or me.role is not Role.OWNER:
                raise Forbidden("only the owner can remove members", code="not_owner")
        if not await self._conversations.remove_member(conversation.id, uid):
            raise NotFound("not a member", code="member_not_found")
        await self._bus.publish(
            user_channel(uid), control_frame("left", conversation_id=conversation.id)
        )
        remaining = await self._conversations.get(conversation.id)
        if remaining is not None:
            await self._publish_members(remaining)

    async def list_for(self, who: Principal) -> list[ConversationSummary]:
        summaries = []
        for conversation in await self._conversations.list_for_user(who.user.id):
            me = conversation.member(who.user.id)
            read_seq = me.read_seq if me else 0
            summaries.append(
                ConversationSummary(
                    conversation,
                    await self._messaging.last_seq(conversation.id),
                    await self._messaging.last_message(conversation.id),
                    await self._messaging.unread(conversation.id, who.user.id, read_seq),
                )
            )
        summaries.sort(
            key=lambda s: s.last_message.ts if s.last_message else s.conversation.created_at,
            reverse=True,
        )
        return summaries

    async def _owned_group(self, who: Principal, conversation_id: object) -> Conversation:
        conversation = await self.get(who, conversation_id)
        if conversation.kind is not ConversationKind.GROUP:
            raise InvalidRequest("members of a direct conversation are fixed", code="direct_fixed")
        me = conversation.member(who.user.id)
        if me is None or me.role is not Role.OWNER:
            raise Forbidden("only the owner can change members", code="not_owner")
        return conversation

    async def _active_user(self, user_id: str) -> User:
        user = await self._accounts.get_user(user_id)
        if user is None or user.disabled:
            raise NotFound("no such user", code="user_not_found")
        return user

    async def _announce_joined(self, conversation: Conversation, user_ids: list[str]) -> None:
        """Tell the gateways serving these users to subscribe them to the conversation."""
        for uid in user_ids:
            await self._bus.publish(
                user_channel(uid),
                control_frame("joined", conversation=conversation_dict(conversation)),
            )

    async def _publish_members(self, conversation: Conversation) -> None:
        await self._bus.publish(
            conversation_channel(conversation.id),
            encode({"type": "conversation", "conversation": conversation_dict(conversation)}),
        )

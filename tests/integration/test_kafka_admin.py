"""Creating the worker's topics, and waiting until the broker's metadata shows them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from streams.app import build_app, changelog_topics
from streams.kafka_admin import (
    NamedTopic,
    create_named_topics,
    delete_topics,
    describe_topics,
    wait_until_visible,
)
from streams.playbooks import load_configured_playbook
from streams.settings import Settings

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def own(settings: Settings) -> AsyncIterator[Settings]:
    """A deployment of its own: these tests create and delete its topics."""
    mine = settings.model_copy(
        update={"topic_prefix": f"{settings.topic_prefix}adm{uuid.uuid4().hex[:6]}."}
    )
    yield mine
    await delete_topics(mine)


def test_the_changelogs_are_the_tables_as_faust_creates_them(settings: Settings) -> None:
    tandem = build_app(settings, load_configured_playbook(settings))

    found = {topic.name: topic for topic in changelog_topics(tandem.app)}

    app_id = tandem.app.conf.id
    assert found[f"{app_id}-journeys-changelog"].partitions == settings.partitions
    assert found[f"{app_id}-deadlines-changelog"].partitions == settings.partitions
    assert found[f"{app_id}-identity-changelog"].partitions == 1
    assert found[f"{settings.topic_prefix}privacy.suppressions"].partitions == 1
    assert all(topic.config["cleanup.policy"] == "compact" for topic in found.values())


async def test_created_topics_are_visible_with_every_partition_led(own: Settings) -> None:
    topics = [
        NamedTopic(f"{own.topic_prefix}a-changelog", 4, {"cleanup.policy": "compact"}),
        NamedTopic(f"{own.topic_prefix}b", 1, {}),
    ]

    first = await create_named_topics(own, topics)
    again = await create_named_topics(own, topics)
    await wait_until_visible(own, {topic.name: topic.partitions for topic in topics}, timeout_s=10)

    assert set(first.values()) == {"created"}
    assert set(again.values()) == {"exists"}


async def test_a_topic_with_other_partitions_is_a_clear_error(own: Settings) -> None:
    name = f"{own.topic_prefix}journeys-changelog"
    await create_named_topics(own, [NamedTopic(name, 2, {})])

    with pytest.raises(RuntimeError, match=r"has 2 partitions, the worker needs 4"):
        await wait_until_visible(own, {name: 4}, timeout_s=10)


async def test_a_topic_never_created_times_out_by_name(own: Settings) -> None:
    name = f"{own.topic_prefix}never"

    with pytest.raises(RuntimeError, match=rf"not visible after 1 s: {name}"):
        await wait_until_visible(own, {name: 1}, timeout_s=1)


async def test_the_worker_prepares_every_topic_before_it_joins(own: Settings) -> None:
    """`tandem worker` creates the catalogue and the changelogs itself (no Faust start-up race)."""
    from streams.cli.worker import _prepare_topics

    tandem = build_app(own, load_configured_playbook(own))

    await _prepare_topics(own, tandem)

    described = {state.name: state for state in await describe_topics(own)}
    assert all(state.exists and not state.drift for state in described.values())
    await wait_until_visible(
        own, {topic.name: topic.partitions for topic in changelog_topics(tandem.app)}, timeout_s=1
    )

"""Alerts in chat (§15): AWS Chatbot (Amazon Q Developer in chat applications) channel
configurations for Slack and Microsoft Teams, subscribed to a chat topic of their own.

The event function publishes each alert and notice there as a custom notification; no webhook
URL or secret exists anywhere (Chatbot holds the workspace authorization). The channels may read
nothing through their role, and their guardrail caps whatever a channel member could run at
read-only.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnResource
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from .config import ChatProps
from .functions import MonitoredFunction

# The AWS managed policy every channel's guardrail is: no channel member may change anything.
GUARDRAIL_POLICY = "ReadOnlyAccess"


class ChatChannels(Construct):
    """Exposes ``topic`` (what the event function publishes to) and the channel configurations."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        chat: ChatProps,
        key: kms.IKey,
        publisher: MonitoredFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        # Encrypted with the alert topic's key, which the event function already uses.
        self.topic = sns.Topic(
            self, "ChatTopic", display_name="S3 encryption drift (chat)", master_key=key,
            enforce_ssl=True,
        )  # fmt: skip
        # Chatbot delivers SNS notifications; the role it assumes for the channel gets no
        # permission at all (notifications need none).
        self.role = iam.Role(
            self,
            "ChannelRole",
            assumed_by=iam.ServicePrincipal(
                "chatbot.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="Role of the S3 encryption monitor's chat channels: no permissions",
        )
        # What every channel shares: the topic it reads, its role and its read-only guardrail.
        channel: dict[str, Any] = {
            "iam_role_arn": self.role.role_arn,
            "sns_topic_arns": [self.topic.topic_arn],
            "guardrail_policies": [f"arn:{Aws.PARTITION}:iam::aws:policy/{GUARDRAIL_POLICY}"],
            "logging_level": "ERROR",
            "user_role_required": False,
        }
        self.configurations: list[CfnResource] = [
            chatbot.CfnSlackChannelConfiguration(
                self, f"Slack{index}", configuration_name=f"{Aws.STACK_NAME}-slack-{index}",
                slack_workspace_id=slack.workspace_id, slack_channel_id=slack.channel_id,
                **channel,
            )
            for index, slack in enumerate(chat.slack)
        ] + [
            chatbot.CfnMicrosoftTeamsChannelConfiguration(
                self, f"Teams{index}", configuration_name=f"{Aws.STACK_NAME}-teams-{index}",
                team_id=teams.team_id, teams_channel_id=teams.channel_id,
                teams_tenant_id=teams.tenant_id, **channel,
            )
            for index, teams in enumerate(chat.teams)
        ]  # fmt: skip
        publisher.function.add_environment("CHAT_TOPIC_ARN", self.topic.topic_arn)
        publisher.allow("PublishToChat", ["sns:Publish"], [self.topic.topic_arn])

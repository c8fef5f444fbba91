"""§15's chat in the template: Chatbot channels with a read-only guardrail, an encrypted topic."""

from __future__ import annotations

from aws_cdk.assertions import Template

from tests.infra.conftest import CHAT, synthesize
from tests.infra.test_monitor import _event_function, _one, _statements

GUARDRAIL = {
    "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/ReadOnlyAccess"]]
}


def test_no_chat_by_default(template: Template) -> None:
    template.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 0)
    template.resource_count_is("AWS::Chatbot::MicrosoftTeamsChannelConfiguration", 0)
    _, function = _event_function(template)
    assert "CHAT_TOPIC_ARN" not in function["Properties"]["Environment"]["Variables"]


def test_slack_and_teams_channels_read_an_encrypted_chat_topic_with_a_read_only_guardrail() -> None:
    template = synthesize(chat=CHAT)

    topic_id, topic = _one(template, "AWS::SNS::Topic", "ChatChatTopic")
    key_id, _ = _one(template, "AWS::KMS::Key", "MonitorAlertKey")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    (policy,) = [
        p
        for p in template.find_resources("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    role_id, role = _one(template, "AWS::IAM::Role", "ChatChannelRole")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "chatbot.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]
    assert _statements(template, "ChatChannelRole") == []  # notifications need no permission

    _, slack = _one(template, "AWS::Chatbot::SlackChannelConfiguration", "ChatSlack0")
    _, teams = _one(template, "AWS::Chatbot::MicrosoftTeamsChannelConfiguration", "ChatTeams0")
    for configuration in (slack, teams):
        properties = configuration["Properties"]
        assert properties["GuardrailPolicies"] == [GUARDRAIL]
        assert properties["SnsTopicArns"] == [{"Ref": topic_id}]
        assert properties["IamRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
        assert properties["UserRoleRequired"] is False
    assert slack["Properties"]["SlackWorkspaceId"] == "T07EZ1ABC"
    assert slack["Properties"]["SlackChannelId"] == "C07EZ1ABC23"
    assert teams["Properties"]["TeamsTenantId"] == CHAT["teams"][0]["tenantId"]

    # The event function publishes to the chat topic, and only there besides the alert topic
    _, function = _event_function(template)
    assert function["Properties"]["Environment"]["Variables"]["CHAT_TOPIC_ARN"] == {"Ref": topic_id}
    (publish,) = [
        s for s in _statements(template, "MonitorFunction") if s.get("Sid") == "PublishToChat"
    ]
    assert (publish["Action"], publish["Resource"]) == ("sns:Publish", {"Ref": topic_id})

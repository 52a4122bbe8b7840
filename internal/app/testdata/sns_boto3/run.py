"""Runs the source document's boto3 code (captcha_results.py) against Carrier.

boto3 is configured by the environment only: AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION. Prints one JSON
line of what happened, for sns_boto3_test.go to check; exits non-zero on the
first surprise.
"""
import json
import os
import re
import sys

import boto3
from botocore.exceptions import ClientError

here = os.path.dirname(os.path.abspath(__file__))
source = open(os.path.join(here, "captcha_results.py")).read()
sections = {}
for part in re.split(r"^# --- ", source, flags=re.M)[1:]:
    name, _, code = part.partition("\n")
    sections[name.strip()] = code
ns = {}
out = {}


def run(name):
    exec(compile(sections[name], "captcha_results.py:" + name, "exec"), ns)


def refused(name):
    try:
        run(name)
    except ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
    raise SystemExit(name + " was accepted")


run("create_topic")
topic_arn = ns["topic_arn"]
out["topic_arn"] = topic_arn
# CreateTopic is idempotent.
assert ns["sns"].create_topic(Name="captcha-results")["TopicArn"] == topic_arn

# The callback handler, as the document deploys it, after the topic exists.
os.environ["SNS_TOPIC_ARN"] = topic_arn
run("lambda_handler")

sqs = boto3.client("sqs")
queues = {}
for q in ("captcha-results-queue", "failures-as-written", "failures-fixed"):
    url = sqs.create_queue(QueueName=q)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queues[q] = (url, arn)

# The document's own subscribe names account 123456789, not this one.
out["subscribe_sqs"] = refused("subscribe_sqs")
ns["sns"].subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queues["captcha-results-queue"][1])
# Lambda (mapped to an HTTP URL by CARRIER_SNS_LAMBDA_FUNCTIONS) and email
# (pending until the confirmation mail's link is visited) are accepted.
run("subscribe_lambda")
run("subscribe_email")

ns["failure_queue_arn"] = queues["failures-as-written"][1]
run("filter")
ns["failure_queue_arn"] = queues["failures-fixed"][1]
run("filter_fixed")
subs = ns["sns"].list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
out["subscriptions"] = sorted(s["Endpoint"] for s in subs)

out["handler"] = ns["lambda_handler"]({"queryStringParameters": {"id": "task-1", "code": "03AGdBq2-SIM"}}, None)
out["handler_missing"] = ns["lambda_handler"]({"queryStringParameters": None}, None)

# A failure, published the way the document's filter expects it.
failure = json.dumps({"task_id": "task-2", "status": "failed", "error": "ERROR_CAPTCHA_UNSOLVABLE"})
ns["sns"].publish(TopicArn=topic_arn, Message=failure, Subject="captcha-failed")

os.environ["SQS_QUEUE_URL"] = queues["captcha-results-queue"][0]
run("consumer")
out["results"] = [ns["get_solved_captcha"](timeout=10), ns["get_solved_captcha"](timeout=10)]

# The envelope as SNS writes it: Message byte for byte, Subject, typed attributes.
ns["QUEUE_URL"] = queues["failures-fixed"][0]
out["failures_fixed"] = ns["get_solved_captcha"](timeout=10)
ns["QUEUE_URL"] = queues["failures-as-written"][0]
out["failures_as_written"] = ns["get_solved_captcha"](timeout=1)

# Raw envelope check on a fresh publish.
ns["sns"].publish(TopicArn=topic_arn, Message=failure, Subject="again",
                  MessageAttributes={"attempt": {"DataType": "Number", "StringValue": "2"}})
m = sqs.receive_message(QueueUrl=queues["captcha-results-queue"][0], WaitTimeSeconds=10)["Messages"][0]
env = json.loads(m["Body"])
out["envelope"] = {k: env.get(k) for k in ("Type", "TopicArn", "Subject", "Message", "MessageAttributes")}
out["envelope_message_exact"] = env["Message"] == failure
print(json.dumps(out))

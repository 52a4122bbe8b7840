"""Drives Carrier with boto3 forced to SQS's query protocol.

botocore's SQS model now describes the JSON protocol only. This script copies it
into a temporary data directory as the query model AWS published before the
move: protocol "query", the XML namespace, each output's <Op>Result wrapper,
the wire names of lists and maps (Attribute.N.Name, SendMessageBatchRequestEntry.N,
<Message>, …) and each error's query code and HTTP status. boto3 then speaks
Action=…&Version=2012-11-05 forms and parses XML answers, as against AWS.

Environment: CARRIER_URL, ACCESS_KEY_ID, SECRET_ACCESS_KEY. Prints "ok" and
exits 0 when every check passed.
"""

import hashlib
import json
import os
import sys
import tempfile
import threading
import time

import boto3
import botocore.exceptions
import botocore.loaders
import botocore.session
from botocore.config import Config

# Member wire names: (structure, member) -> locationName.
MEMBER_NAMES = {
    ("CreateQueueRequest", "Attributes"): "Attribute",
    ("CreateQueueRequest", "tags"): "Tag",
    ("SetQueueAttributesRequest", "Attributes"): "Attribute",
    ("GetQueueAttributesResult", "Attributes"): "Attribute",
    ("ListQueueTagsResult", "Tags"): "Tag",
    ("Message", "Attributes"): "Attribute",
    ("Message", "MessageAttributes"): "MessageAttribute",
    ("SendMessageRequest", "MessageAttributes"): "MessageAttribute",
    ("SendMessageRequest", "MessageSystemAttributes"): "MessageSystemAttribute",
    ("SendMessageBatchRequestEntry", "MessageAttributes"): "MessageAttribute",
    ("SendMessageBatchRequestEntry", "MessageSystemAttributes"): "MessageSystemAttribute",
    ("MessageAttributeValue", "StringListValues"): "StringListValue",
    ("MessageAttributeValue", "BinaryListValues"): "BinaryListValue",
    ("MessageSystemAttributeValue", "StringListValues"): "StringListValue",
    ("MessageSystemAttributeValue", "BinaryListValues"): "BinaryListValue",
}

# List member wire names.
LIST_MEMBERS = {
    "AWSAccountIdList": "AWSAccountId",
    "ActionNameList": "ActionName",
    "AttributeNameList": "AttributeName",
    "BatchResultErrorEntryList": "BatchResultErrorEntry",
    "BinaryList": "BinaryListValue",
    "StringList": "StringListValue",
    "ChangeMessageVisibilityBatchRequestEntryList": "ChangeMessageVisibilityBatchRequestEntry",
    "ChangeMessageVisibilityBatchResultEntryList": "ChangeMessageVisibilityBatchResultEntry",
    "DeleteMessageBatchRequestEntryList": "DeleteMessageBatchRequestEntry",
    "DeleteMessageBatchResultEntryList": "DeleteMessageBatchResultEntry",
    "ListMessageMoveTasksResultEntryList": "ListMessageMoveTasksResultEntry",
    "MessageAttributeNameList": "MessageAttributeName",
    "MessageSystemAttributeList": "MessageSystemAttributeName",
    "MessageList": "Message",
    "QueueUrlList": "QueueUrl",
    "SendMessageBatchRequestEntryList": "SendMessageBatchRequestEntry",
    "SendMessageBatchResultEntryList": "SendMessageBatchResultEntry",
    "TagKeyList": "TagKey",
}

# Map entry key and value wire names.
MAP_ENTRIES = {
    "MessageBodyAttributeMap": ("Name", "Value"),
    "MessageBodySystemAttributeMap": ("Name", "Value"),
    "MessageSystemAttributeMap": ("Name", "Value"),
    "QueueAttributeMap": ("Name", "Value"),
    "TagMap": ("Key", "Value"),
}

# Query error codes and statuses of SQS's modeled errors.
ERRORS = {
    "BatchEntryIdsNotDistinct": ("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400),
    "BatchRequestTooLong": ("AWS.SimpleQueueService.BatchRequestTooLong", 400),
    "EmptyBatchRequest": ("AWS.SimpleQueueService.EmptyBatchRequest", 400),
    "InvalidBatchEntryId": ("AWS.SimpleQueueService.InvalidBatchEntryId", 400),
    "MessageNotInflight": ("AWS.SimpleQueueService.MessageNotInflight", 400),
    "OverLimit": ("OverLimit", 403),
    "PurgeQueueInProgress": ("AWS.SimpleQueueService.PurgeQueueInProgress", 403),
    "QueueDeletedRecently": ("AWS.SimpleQueueService.QueueDeletedRecently", 400),
    "QueueDoesNotExist": ("AWS.SimpleQueueService.NonExistentQueue", 400),
    "QueueNameExists": ("QueueAlreadyExists", 400),
    "ResourceNotFoundException": ("ResourceNotFoundException", 404),
    "TooManyEntriesInBatchRequest": ("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400),
    "UnsupportedOperation": ("AWS.SimpleQueueService.UnsupportedOperation", 400),
}


def query_model():
    m = botocore.loaders.Loader().load_service_model("sqs", "service-2")
    md = m["metadata"]
    md["protocol"] = "query"
    md["xmlNamespace"] = "http://queue.amazonaws.com/doc/2012-11-05/"
    for k in ("protocols", "jsonVersion", "targetPrefix", "awsQueryCompatible"):
        md.pop(k, None)
    shapes = m["shapes"]
    for (shape, member), name in MEMBER_NAMES.items():
        shapes[shape]["members"][member]["locationName"] = name
    for shape, name in LIST_MEMBERS.items():
        if shape in shapes:
            shapes[shape]["member"]["locationName"] = name
            shapes[shape]["flattened"] = True
    for shape, (key, value) in MAP_ENTRIES.items():
        shapes[shape]["key"]["locationName"] = key
        shapes[shape]["value"]["locationName"] = value
        shapes[shape]["flattened"] = True
    for shape, (code, status) in ERRORS.items():
        shapes[shape]["error"] = {"code": code, "httpStatusCode": status, "senderFault": True}
    for op in m["operations"].values():
        if "output" in op:
            op["output"]["resultWrapper"] = op["name"] + "Result"
    return m


def client(secret=None):
    data = tempfile.mkdtemp()
    d = os.path.join(data, "sqs", "2012-11-05")
    os.makedirs(d)
    with open(os.path.join(d, "service-2.json"), "w") as f:
        json.dump(query_model(), f)
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, data)
    cl = boto3.Session(botocore_session=session).client(
        "sqs", region_name="eu-west-1", endpoint_url=os.environ["CARRIER_URL"],
        aws_access_key_id=os.environ["ACCESS_KEY_ID"], aws_secret_access_key=secret or os.environ["SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30))
    assert cl.meta.service_model.protocol == "query", cl.meta.service_model.protocol
    return cl


seen = []  # (action, content type of the answer)


def attrs_md5(attrs):
    """MD5OfMessageAttributes as AWS documents it (botocore no longer checks it)."""
    def put(b):
        return len(b).to_bytes(4, "big") + b
    out = b""
    for name in sorted(attrs):
        a = attrs[name]
        out += put(name.encode()) + put(a["DataType"].encode())
        if "BinaryValue" in a:
            out += b"\x02" + put(a["BinaryValue"])
        else:
            out += b"\x01" + put(a["StringValue"].encode())
    return hashlib.md5(out).hexdigest()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    cl = client()

    def before_send(request, **kwargs):
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        check("X-Amz-Target" not in request.headers, "a query request names no X-Amz-Target")
        check("Version=2012-11-05" in body and body.startswith("Action="), "form body: " + body[:80])
    cl.meta.events.register("before-send.sqs", before_send)

    def after_call(http_response, model, **kwargs):
        seen.append((model.name, http_response.headers.get("Content-Type", "")))
    cl.meta.events.register("after-call.sqs", after_call)

    url = cl.create_queue(QueueName="q-results", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    check(url.endswith("/q-results"), url)
    check(cl.create_queue(QueueName="q-results", Attributes={"VisibilityTimeout": "30"})["QueueUrl"] == url, "create again")
    try:
        cl.create_queue(QueueName="q-results", Attributes={"VisibilityTimeout": "31"})
        raise AssertionError("create with other attributes should fail")
    except cl.exceptions.QueueNameExists as e:
        check(e.response["Error"]["Code"] == "QueueAlreadyExists", e.response)
    other = cl.create_queue(QueueName="q-other")["QueueUrl"]
    check(cl.get_queue_url(QueueName="q-results")["QueueUrl"] == url, "get_queue_url")

    listed = cl.list_queues()["QueueUrls"]
    check(listed == [other, url], listed)
    page = cl.list_queues(QueueNamePrefix="q-", MaxResults=1)
    check(page["QueueUrls"] == [other] and page["NextToken"], page)
    page = cl.list_queues(QueueNamePrefix="q-", MaxResults=1, NextToken=page["NextToken"])
    check(page["QueueUrls"] == [url] and "NextToken" not in page, page)
    check("QueueUrls" not in cl.list_queues(QueueNamePrefix="none-"), "empty list")

    # A long poll waiting when the message is sent gets it, attributes and all.
    got = {}

    def poll():
        try:
            got["out"] = cl.receive_message(QueueUrl=url, WaitTimeSeconds=10, MaxNumberOfMessages=10,
                                            VisibilityTimeout=30, MessageAttributeNames=["All"],
                                            AttributeNames=["All"])
        except Exception as e:  # reported below
            got["err"] = e
    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.3)
    attrs = {"kind": {"DataType": "String", "StringValue": "captcha"},
             "score": {"DataType": "Number", "StringValue": "0.9"},
             "note": {"DataType": "String.custom", "StringValue": "a <b> & \u00e9"}}
    sent = cl.send_message(QueueUrl=url, MessageBody="result-1 <&>", MessageAttributes=attrs)
    check(sent["MD5OfMessageBody"] == hashlib.md5("result-1 <&>".encode()).hexdigest(), sent)
    check(sent["MD5OfMessageAttributes"] == attrs_md5(attrs), sent)
    t.join(30)
    check(not t.is_alive(), "long poll did not return")
    check("err" not in got, got.get("err"))
    msgs = got["out"]["Messages"]
    check(len(msgs) == 1, msgs)
    m = msgs[0]
    check(m["MessageId"] == sent["MessageId"] and m["Body"] == "result-1 <&>", m)
    check(m["MessageAttributes"]["note"] == {"DataType": "String.custom", "StringValue": "a <b> & \u00e9"}, m)
    check(m["MessageAttributes"]["score"]["DataType"] == "Number", m)
    check(m["MD5OfMessageAttributes"] == attrs_md5(m["MessageAttributes"]) == sent["MD5OfMessageAttributes"], m)
    check(m["MD5OfBody"] == sent["MD5OfMessageBody"], m)
    check(m["Attributes"]["ApproximateReceiveCount"] == "1" and m["Attributes"]["SentTimestamp"], m)

    # Leased for 30 s: nothing visible now; visibility 0 makes it visible again.
    check("Messages" not in cl.receive_message(QueueUrl=url), "leased message received")
    cl.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = cl.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    check(len(again) == 1 and again[0]["Attributes"]["ApproximateReceiveCount"] == "2", again)
    check("MessageAttributes" not in again[0], again[0])
    cl.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])

    batch = cl.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "b-1", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "1"}}},
        {"Id": "b", "MessageBody": "b-2", "DelaySeconds": 0},
        {"Id": "c", "MessageBody": "b-3", "MessageAttributes": {"aws.bad": {"DataType": "String", "StringValue": "x"}}},
    ])
    check(sorted(s["Id"] for s in batch["Successful"]) == ["a", "b"], batch)
    check(len(batch["Failed"]) == 1 and batch["Failed"][0]["Id"] == "c" and batch["Failed"][0]["SenderFault"] is True, batch)
    check(batch["Failed"][0]["Code"] == "InvalidParameterValue", batch)
    a = [x for x in batch["Successful"] if x["Id"] == "a"][0]
    check(a["MD5OfMessageAttributes"] == attrs_md5({"n": {"DataType": "Number", "StringValue": "1"}}), a)
    check(a["MD5OfMessageBody"] == hashlib.md5(b"b-1").hexdigest(), a)

    got = []
    deadline = time.time() + 30
    while len(got) < 2 and time.time() < deadline:
        got += cl.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                                  MessageAttributeNames=["n"]).get("Messages", [])
    check(sorted(x["Body"] for x in got) == ["b-1", "b-2"], got)
    for x in got:
        check(x["MD5OfBody"] == hashlib.md5(x["Body"].encode()).hexdigest(), x)
        check(x["Body"] != "b-1" or x["MD5OfMessageAttributes"] == attrs_md5(x["MessageAttributes"]), x)
    vis = cl.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "x" + str(i), "ReceiptHandle": x["ReceiptHandle"], "VisibilityTimeout": 60} for i, x in enumerate(got)])
    check(len(vis["Successful"]) == 2 and not vis.get("Failed"), vis)

    attrs = cl.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    check(attrs["ApproximateNumberOfMessagesNotVisible"] == "2" and attrs["VisibilityTimeout"] == "30", attrs)
    check(attrs["QueueArn"].endswith(":q-results"), attrs)
    one = cl.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    check(list(one) == ["QueueArn"], one)

    deleted = cl.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "d" + str(i), "ReceiptHandle": x["ReceiptHandle"]} for i, x in enumerate(got)] +
        [{"Id": "bad", "ReceiptHandle": "has spaces"}])
    check(sorted(s["Id"] for s in deleted["Successful"]) == ["d0", "d1"], deleted)
    check([f["Code"] for f in deleted["Failed"]] == ["ReceiptHandleIsInvalid"], deleted)
    try:
        cl.delete_message_batch(QueueUrl=url, Entries=[])
        raise AssertionError("an empty batch should fail")
    except cl.exceptions.EmptyBatchRequest as e:
        check(e.response["Error"]["Code"] == "AWS.SimpleQueueService.EmptyBatchRequest", e.response)

    cl.send_message(QueueUrl=url, MessageBody="to purge")
    cl.purge_queue(QueueUrl=url)
    check(cl.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
          ["ApproximateNumberOfMessages"] == "0", "purged")

    cl.delete_queue(QueueUrl=other)
    for call in (lambda: cl.get_queue_url(QueueName="q-other"),
                 lambda: cl.send_message(QueueUrl=other, MessageBody="x")):
        try:
            call()
            raise AssertionError("a deleted queue should not exist")
        except cl.exceptions.QueueDoesNotExist as e:
            check(e.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue", e.response)
            check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.response)
            check(e.response["Error"]["Type"] == "Sender", e.response)
    try:
        cl.tag_queue(QueueUrl=url, Tags={"k": "v"})
        raise AssertionError("tags are not supported")
    except cl.exceptions.UnsupportedOperation as e:
        check(e.response["Error"]["Code"] == "AWS.SimpleQueueService.UnsupportedOperation", e.response)

    bad = client(secret="wrong")
    try:
        bad.list_queues()
        raise AssertionError("a wrong secret should be refused")
    except botocore.exceptions.ClientError as e:
        check(e.response["Error"]["Code"] == "SignatureDoesNotMatch" and
              e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response)

    cl.delete_queue(QueueUrl=url)
    check("QueueUrls" not in cl.list_queues(), "all deleted")
    check(all(ct.startswith("text/xml") for _, ct in seen), seen)
    print("ok", len(seen), "query-protocol calls")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        import traceback
        traceback.print_exc()
        sys.exit(1)

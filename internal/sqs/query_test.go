package sqs

import (
	"io"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeQuery(t *testing.T) {
	type createIn struct {
		QueueName  string
		Attributes map[string]string `query:"Attribute"`
		Tags       map[string]string `json:"tags" query:"Tag,Key,Value"`
	}
	type sendIn struct {
		QueueUrl string
		sendEntry
	}
	type batchIn struct {
		QueueUrl string
		Entries  []sendEntry `query:"SendMessageBatchRequestEntry"`
	}
	type receiveIn struct {
		MaxNumberOfMessages   *int
		WaitTimeSeconds       *int64
		AttributeNames        []string `query:"AttributeName"`
		MessageAttributeNames []string `query:"MessageAttributeName"`
	}
	type handlesIn struct {
		Entries []handleEntry `query:"ChangeMessageVisibilityBatchRequestEntry"`
	}
	type untagIn struct {
		TagKeys []string `query:"TagKey"`
	}
	cases := []struct {
		name string
		form string
		into any
		want any
		code string // the error's query code, if one
	}{
		{"queue attributes and tags", "QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5&Attribute.2.Name=DelaySeconds&Attribute.2.Value=0&Tag.1.Key=team&Tag.1.Value=a",
			&createIn{}, &createIn{QueueName: "q", Attributes: map[string]string{"VisibilityTimeout": "5", "DelaySeconds": "0"}, Tags: map[string]string{"team": "a"}}, ""},
		{"no attributes stay nil", "QueueName=q", &createIn{}, &createIn{QueueName: "q"}, ""},
		{"map entry without its name", "Attribute.1.Value=5", &createIn{}, nil, "MissingParameter"},
		{"message with attributes", "QueueUrl=u&MessageBody=hi+there&DelaySeconds=3&MessageAttribute.1.Name=k&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v&MessageAttribute.2.Name=b&MessageAttribute.2.Value.DataType=Binary&MessageAttribute.2.Value.BinaryValue=AAE%3D",
			&sendIn{}, &sendIn{QueueUrl: "u", sendEntry: sendEntry{MessageBody: ptr("hi there"), DelaySeconds: ptr(int64(3)), MessageAttributes: map[string]messageAttribute{
				"k": {DataType: "String", StringValue: ptr("v")}, "b": {DataType: "Binary", BinaryValue: []byte{0, 1}}}}}, ""},
		{"empty body is present", "MessageBody=", &sendIn{}, &sendIn{sendEntry: sendEntry{MessageBody: ptr("")}}, ""},
		{"bad base64", "MessageAttribute.1.Name=b&MessageAttribute.1.Value.DataType=Binary&MessageAttribute.1.Value.BinaryValue=%25%25", &sendIn{}, nil, "InvalidParameterValue"},
		{"batch entries in index order", "QueueUrl=u&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=2&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=1&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=n&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=Number&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=1",
			&batchIn{}, &batchIn{QueueUrl: "u", Entries: []sendEntry{
				{Id: "a", MessageBody: ptr("1"), MessageAttributes: map[string]messageAttribute{"n": {DataType: "Number", StringValue: ptr("1")}}},
				{Id: "b", MessageBody: ptr("2")}}}, ""},
		{"an empty list sent as Name=", "SendMessageBatchRequestEntry=", &batchIn{}, &batchIn{}, ""},
		{"lists and integers", "MaxNumberOfMessages=10&WaitTimeSeconds=20&AttributeName.1=All&MessageAttributeName.1=a.*&MessageAttributeName.2=b",
			&receiveIn{}, &receiveIn{MaxNumberOfMessages: ptr(10), WaitTimeSeconds: ptr(int64(20)), AttributeNames: []string{"All"}, MessageAttributeNames: []string{"a.*", "b"}}, ""},
		{"not an integer", "WaitTimeSeconds=soon", &receiveIn{}, nil, "InvalidParameterValue"},
		{"visibility batch", "ChangeMessageVisibilityBatchRequestEntry.1.Id=x&ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=h&ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout=30",
			&handlesIn{}, &handlesIn{Entries: []handleEntry{{Id: "x", ReceiptHandle: "h", VisibilityTimeout: 30}}}, ""},
		{"tag keys", "TagKey.1=a&TagKey.2=b", &untagIn{}, &untagIn{TagKeys: []string{"a", "b"}}, ""},
		{"too many entries", "TagKey.1=a&TagKey.200=b&" + strings.Repeat("TagKey.", 1) + strings.Join(func() []string {
			var out []string
			for i := 2; i < 102; i++ {
				out = append(out, strconv.Itoa(i)+"=x")
			}
			return out
		}(), "&TagKey."), &untagIn{}, nil, "InvalidParameterValue"},
		{"too deep is ignored", "TagKey.1.a.b.c.d.e.f.g.h=x&TagKey.2=y", &untagIn{}, &untagIn{TagKeys: []string{"y"}}, ""},
		{"not indexes are ignored", "TagKey.x=a&TagKey.0=b&TagKey.1=c", &untagIn{}, &untagIn{TagKeys: []string{"c"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form, err := url.ParseQuery(tc.form)
			if err != nil {
				t.Fatal(err)
			}
			e := decodeQuery(form, tc.into)
			if tc.code != "" {
				if e == nil || e.Code != tc.code {
					t.Fatalf("error %v, want %s", e, tc.code)
				}
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			if !reflect.DeepEqual(tc.into, tc.want) {
				t.Fatalf("decoded %+v\nwant    %+v", tc.into, tc.want)
			}
		})
	}
}

func TestEncodeQueryResult(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	const ns = ` xmlns="http://queue.amazonaws.com/doc/2012-11-05/"`
	const meta = `<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata>`
	cases := []struct {
		action string
		out    any
		want   string
	}{
		{"DeleteQueue", struct{}{}, `<DeleteQueueResponse` + ns + `>` + meta + `</DeleteQueueResponse>`},
		{"CreateQueue", queueURLResult{"http://h/p/q"}, `<CreateQueueResponse` + ns + `><CreateQueueResult><QueueUrl>http://h/p/q</QueueUrl></CreateQueueResult>` + meta + `</CreateQueueResponse>`},
		{"ListQueues", listQueuesResult{QueueUrls: []string{"u1", "u2"}, NextToken: "q"},
			`<ListQueuesResponse` + ns + `><ListQueuesResult><QueueUrl>u1</QueueUrl><QueueUrl>u2</QueueUrl><NextToken>q</NextToken></ListQueuesResult>` + meta + `</ListQueuesResponse>`},
		{"ListQueues", listQueuesResult{}, `<ListQueuesResponse` + ns + `><ListQueuesResult></ListQueuesResult>` + meta + `</ListQueuesResponse>`},
		{"GetQueueAttributes", queueAttributesResult{Attributes: map[string]string{"VisibilityTimeout": "5", "DelaySeconds": "0"}},
			`<GetQueueAttributesResponse` + ns + `><GetQueueAttributesResult><Attribute><Name>DelaySeconds</Name><Value>0</Value></Attribute><Attribute><Name>VisibilityTimeout</Name><Value>5</Value></Attribute></GetQueueAttributesResult>` + meta + `</GetQueueAttributesResponse>`},
		{"SendMessage", sendResult{MessageId: "m", MD5OfMessageBody: "b"},
			`<SendMessageResponse` + ns + `><SendMessageResult><MessageId>m</MessageId><MD5OfMessageBody>b</MD5OfMessageBody></SendMessageResult>` + meta + `</SendMessageResponse>`},
		{"SendMessageBatch", sendBatchResult{Successful: []sendResult{{Id: "a", MessageId: "m", MD5OfMessageBody: "b", MD5OfMessageAttributes: "c"}},
			Failed: []batchFailure{{Id: "z", SenderFault: true, Code: "InvalidParameterValue", Message: "x < y"}}},
			`<SendMessageBatchResponse` + ns + `><SendMessageBatchResult><SendMessageBatchResultEntry><Id>a</Id><MessageId>m</MessageId><MD5OfMessageBody>b</MD5OfMessageBody><MD5OfMessageAttributes>c</MD5OfMessageAttributes></SendMessageBatchResultEntry>` +
				`<BatchResultErrorEntry><Id>z</Id><SenderFault>true</SenderFault><Code>InvalidParameterValue</Code><Message>x &lt; y</Message></BatchResultErrorEntry></SendMessageBatchResult>` + meta + `</SendMessageBatchResponse>`},
		{"DeleteMessageBatch", deleteBatchResult{Successful: []batchOK{{"a"}}, Failed: []batchFailure{}},
			`<DeleteMessageBatchResponse` + ns + `><DeleteMessageBatchResult><DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry></DeleteMessageBatchResult>` + meta + `</DeleteMessageBatchResponse>`},
		{"ChangeMessageVisibilityBatch", changeBatchResult{Failed: []batchFailure{{Id: "a", Code: "InternalFailure"}}},
			`<ChangeMessageVisibilityBatchResponse` + ns + `><ChangeMessageVisibilityBatchResult><BatchResultErrorEntry><Id>a</Id><SenderFault>false</SenderFault><Code>InternalFailure</Code><Message></Message></BatchResultErrorEntry></ChangeMessageVisibilityBatchResult>` + meta + `</ChangeMessageVisibilityBatchResponse>`},
		{"ReceiveMessage", receiveResult{Messages: []receivedMessage{{MessageId: "m", ReceiptHandle: "h", MD5OfBody: "b", Body: "<&>",
			Attributes: map[string]string{"SentTimestamp": "1"}, MD5OfMessageAttributes: "c",
			MessageAttributes: map[string]messageAttribute{"k": {DataType: "String", StringValue: ptr("v")}, "n": {DataType: "Binary", BinaryValue: []byte{1}}}}}},
			`<ReceiveMessageResponse` + ns + `><ReceiveMessageResult><Message><MessageId>m</MessageId><ReceiptHandle>h</ReceiptHandle><MD5OfBody>b</MD5OfBody><Body>&lt;&amp;&gt;</Body>` +
				`<Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute><MD5OfMessageAttributes>c</MD5OfMessageAttributes>` +
				`<MessageAttribute><Name>k</Name><Value><DataType>String</DataType><StringValue>v</StringValue></Value></MessageAttribute>` +
				`<MessageAttribute><Name>n</Name><Value><DataType>Binary</DataType><BinaryValue>AQ==</BinaryValue></Value></MessageAttribute></Message></ReceiveMessageResult>` + meta + `</ReceiveMessageResponse>`},
		{"ReceiveMessage", receiveResult{}, `<ReceiveMessageResponse` + ns + `><ReceiveMessageResult></ReceiveMessageResult>` + meta + `</ReceiveMessageResponse>`},
	}
	for _, tc := range cases {
		got := string(encodeQueryResult(tc.action, tc.out, "rid"))
		if got != head+tc.want {
			t.Errorf("%s %+v:\n got %s\nwant %s", tc.action, tc.out, got, head+tc.want)
		}
	}
}

func TestEncodeQueryError(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	cases := []struct {
		err  *Error
		want string
	}{
		{errQueueDoesNotExist(), `<Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>The specified queue does not exist.</Message>`},
		{newErr(400, "QueueNameExists", "QueueAlreadyExists", "a & b"), `<Type>Sender</Type><Code>QueueAlreadyExists</Code><Message>a &amp; b</Message>`},
		{errBatch("EmptyBatchRequest", "none"), `<Type>Sender</Type><Code>AWS.SimpleQueueService.EmptyBatchRequest</Code><Message>none</Message>`},
		{errMissingParameter("QueueUrl"), `<Type>Sender</Type><Code>MissingParameter</Code><Message>The request must contain the parameter QueueUrl.</Message>`},
		{errInternal(), `<Type>Receiver</Type><Code>InternalFailure</Code>`},
	}
	for _, tc := range cases {
		got := string(encodeQueryError(tc.err, "rid"))
		if !strings.HasPrefix(got, head+`<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error>`) ||
			!strings.Contains(got, tc.want) || !strings.HasSuffix(got, `<Detail/></Error><RequestId>rid</RequestId></ErrorResponse>`) {
			t.Errorf("%v:\n got %s\nwant …%s…", tc.err, got, tc.want)
		}
	}
}

func TestIsQueryRequest(t *testing.T) {
	const sqsAuth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/sqs/aws4_request, SignedHeaders=host, Signature=00"
	const snsAuth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/sns/aws4_request, SignedHeaders=host, Signature=00"
	const form = "application/x-www-form-urlencoded; charset=utf-8"
	cases := []struct {
		name, method, path, auth, ctype, target, body string
		want                                          bool
	}{
		{"signed for sqs", "POST", "/", sqsAuth, form, "", "Action=ListQueues&Version=2012-11-05", true},
		{"signed for sqs to a queue URL", "POST", "/p/q", sqsAuth, form, "", "Action=SendMessage&MessageBody=x", true},
		{"signed for sns", "POST", "/", snsAuth, form, "", "Action=Publish&Version=2012-11-05", false},
		{"unsigned with SQS's version", "POST", "/", "", form, "", "Action=ListQueues&Version=2012-11-05", true},
		{"unsigned with SNS's version", "POST", "/", "", form, "", "Action=Publish&Version=2010-03-31", false},
		{"JSON protocol", "POST", "/", sqsAuth, "application/x-amz-json-1.0", "AmazonSQS.ListQueues", "{}", false},
		{"REST path", "POST", "/v1/queues/x/receive", sqsAuth, form, "", "Version=2012-11-05", false},
		{"REST JSON", "POST", "/v1/queues", "Bearer k", "application/json", "", `{"name":"q"}`, false},
		{"callback form", "POST", "/callbacks/tok", "", form, "", "id=1&code=abc", false},
		{"unsigned to a queue URL", "POST", "/p/q", "", form, "", "Action=SendMessage&Version=2012-11-05", false},
		{"unsigned to a queue URL naming the version", "POST", "/p/q?Version=2012-11-05", "", form, "", "Action=SendMessage", true},
		{"GET with version", "GET", "/?Action=ListQueues&Version=2012-11-05", "", "", "", "", true},
		{"DELETE", "DELETE", "/", sqsAuth, form, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			for k, v := range map[string]string{"Authorization": tc.auth, "Content-Type": tc.ctype, "X-Amz-Target": tc.target} {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			if got := IsQueryRequest(r); got != tc.want {
				t.Fatalf("IsQueryRequest = %v, want %v", got, tc.want)
			}
			// Whatever it read, the body is still all there.
			if b, _ := io.ReadAll(r.Body); string(b) != tc.body {
				t.Fatalf("body left %q, want %q", b, tc.body)
			}
		})
	}
}

package sns

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"sort"
)

// Encode is the XML answer of action with result (nil: no Result element).
func Encode(action string, result any, requestID string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<` + action + `Response xmlns="` + Namespace + `">`)
	if result != nil {
		enc := xml.NewEncoder(&b)
		enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}})
		enc.Flush()
	}
	b.WriteString(`<ResponseMetadata><RequestId>`)
	xml.EscapeText(&b, []byte(requestID))
	b.WriteString(`</RequestId></ResponseMetadata></` + action + `Response>`)
	return b.Bytes()
}

func writeResult(w http.ResponseWriter, action string, result any, requestID string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	w.Write(Encode(action, result, requestID))
}

// entries is a map as the query protocol writes it: <entry><key/><value/></entry>.
type entries []entry

type entry struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func mapEntries(m map[string]string) entries {
	out := make(entries, 0, len(m))
	for k, v := range m {
		out = append(out, entry{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

type attributesResult struct {
	Attributes struct {
		Entry entries `xml:"entry"`
	} `xml:"Attributes"`
}

func attributes(m map[string]string) attributesResult {
	var r attributesResult
	r.Attributes.Entry = mapEntries(m)
	return r
}

type topicArnResult struct {
	TopicArn string `xml:"TopicArn"`
}

type topicMember struct {
	TopicArn string `xml:"TopicArn"`
}

type listTopicsResult struct {
	Topics struct {
		Member []topicMember `xml:"member"`
	} `xml:"Topics"`
	NextToken string `xml:"NextToken,omitempty"`
}

type subscriptionMember struct {
	SubscriptionArn string `xml:"SubscriptionArn"`
	Owner           string `xml:"Owner"`
	Protocol        string `xml:"Protocol"`
	Endpoint        string `xml:"Endpoint"`
	TopicArn        string `xml:"TopicArn"`
}

type listSubscriptionsResult struct {
	Subscriptions struct {
		Member []subscriptionMember `xml:"member"`
	} `xml:"Subscriptions"`
	NextToken string `xml:"NextToken,omitempty"`
}

type subscribeResult struct {
	SubscriptionArn string `xml:"SubscriptionArn"`
}

type publishResult struct {
	MessageID      string `xml:"MessageId"`
	SequenceNumber string `xml:"SequenceNumber,omitempty"`
}

type batchSuccess struct {
	ID             string `xml:"Id"`
	MessageID      string `xml:"MessageId"`
	SequenceNumber string `xml:"SequenceNumber,omitempty"`
}

type batchFailure struct {
	ID          string `xml:"Id"`
	Code        string `xml:"Code"`
	Message     string `xml:"Message"`
	SenderFault bool   `xml:"SenderFault"`
}

type publishBatchResult struct {
	Successful struct {
		Member []batchSuccess `xml:"member"`
	} `xml:"Successful"`
	Failed struct {
		Member []batchFailure `xml:"member"`
	} `xml:"Failed"`
}

type tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type listTagsResult struct {
	Tags struct {
		Member []tag `xml:"member"`
	} `xml:"Tags"`
}

type empty struct{}

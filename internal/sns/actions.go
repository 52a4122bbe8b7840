package sns

import (
	"fmt"
	"strconv"
	"strings"

	"carrier/internal/topic"
)

// maxListEntries bounds how many N a list parameter (Attributes.entry.N,
// MessageAttributes.entry.N, …) is read for.
const maxListEntries = 100

// pageSize is how many topics or subscriptions one List call answers.
const pageSize = 100

func (c *call) topicArn(name string) string {
	return "arn:aws:sns:" + c.region + ":" + c.project + ":" + name
}

// topicName reads the topic ARN parameter param: arn:aws:sns:<region>:<account>:<name>
// of this account (any region).
func (c *call) topicName(param string) (string, *Error) {
	arn := c.form.Get(param)
	if arn == "" {
		return "", errParam(param)
	}
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sns" || p[5] == "" {
		return "", errInvalid("Invalid parameter: %s Reason: An ARN must have the form arn:aws:sns:<region>:<account>:<topic>", param)
	}
	if p[4] != c.project {
		return "", c.notAuthorized(arn)
	}
	return p[5], nil
}

func (c *call) notAuthorized(arn string) *Error {
	return newErr(403, "AuthorizationError", "User: arn:aws:iam::%s:user/carrier is not authorized to perform: SNS:%s on resource: %s",
		c.project, c.form.Get("Action"), arn)
}

// subscriptionID reads a subscription ARN: the topic ARN, ":" and the id.
func (c *call) subscriptionID(param string) (topicName, id string, e *Error) {
	arn := c.form.Get(param)
	if arn == "" {
		return "", "", errParam(param)
	}
	p := strings.Split(arn, ":")
	if len(p) != 7 || p[0] != "arn" || p[2] != "sns" || p[5] == "" || p[6] == "" {
		return "", "", errInvalid("Invalid parameter: %s Reason: An ARN must have the form arn:aws:sns:<region>:<account>:<topic>:<id>", param)
	}
	if p[4] != c.project {
		return "", "", c.notAuthorized(arn)
	}
	return p[5], p[6], nil
}

func (c *call) subscriptionArn(s topic.Subscription) string { return c.topicArn(s.Topic) + ":" + s.ID }

// entryMap reads prefix.entry.N.key / prefix.entry.N.value.
func entryMap(form map[string][]string, prefix, key, value string) map[string]string {
	out := map[string]string{}
	for n := 1; n <= maxListEntries; n++ {
		k, ok := form[fmt.Sprintf("%s.%d.%s", prefix, n, key)]
		if !ok {
			break
		}
		v := form[fmt.Sprintf("%s.%d.%s", prefix, n, value)]
		val := ""
		if len(v) > 0 {
			val = v[0]
		}
		out[k[0]] = val
	}
	return out
}

func list(form map[string][]string, prefix string) []string {
	var out []string
	for n := 1; n <= maxListEntries; n++ {
		v, ok := form[fmt.Sprintf("%s.%d", prefix, n)]
		if !ok {
			break
		}
		out = append(out, v[0])
	}
	return out
}

func messageAttributes(form map[string][]string, prefix string) (map[string]topic.Attribute, *Error) {
	out := map[string]topic.Attribute{}
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for n := 1; n <= maxListEntries; n++ {
		base := fmt.Sprintf("%s.entry.%d.", prefix, n)
		name, ok := form[base+"Name"]
		if !ok {
			break
		}
		dt := get(base + "Value.DataType")
		if dt == "" {
			return nil, newErr(400, "ParameterValueInvalid", "The message attribute '%s' must contain non-empty message attribute type.", name[0])
		}
		v := get(base + "Value.StringValue")
		if strings.HasPrefix(dt, "Binary") {
			v = get(base + "Value.BinaryValue")
		}
		out[name[0]] = topic.Attribute{DataType: dt, Value: v}
	}
	return out, nil
}

func page(form map[string][]string, n int) (start int, next string, e *Error) {
	if v := form["NextToken"]; len(v) > 0 && v[0] != "" {
		i, err := strconv.Atoi(v[0])
		if err != nil || i < 0 || i > n {
			return 0, "", errParam("NextToken")
		}
		start = i
	}
	if start+pageSize < n {
		next = strconv.Itoa(start + pageSize)
	}
	return start, next, nil
}

func createTopic(c *call) (any, *Error) {
	name := c.form.Get("Name")
	tags := entryMap(c.form, "Tags.member", "Key", "Value")
	t, err := c.h.Topics.Create(c.ctx, c.project, name, entryMap(c.form, "Attributes.entry", "key", "value"), tags)
	if err != nil {
		return nil, serviceError(err)
	}
	return topicArnResult{TopicArn: c.topicArn(t.Name)}, nil
}

func deleteTopic(c *call) (any, *Error) {
	name, e := c.topicName("TopicArn")
	if e != nil {
		return nil, e
	}
	if err := c.h.Topics.Delete(c.ctx, c.project, name); err != nil {
		return nil, serviceError(err)
	}
	return nil, nil
}

func listTopics(c *call) (any, *Error) {
	ts, err := c.h.Topics.List(c.ctx, c.project)
	if err != nil {
		return nil, serviceError(err)
	}
	start, next, e := page(c.form, len(ts))
	if e != nil {
		return nil, e
	}
	var r listTopicsResult
	for _, t := range ts[start:min(len(ts), start+pageSize)] {
		r.Topics.Member = append(r.Topics.Member, topicMember{c.topicArn(t.Name)})
	}
	r.NextToken = next
	return r, nil
}

func getTopicAttributes(c *call) (any, *Error) {
	name, e := c.topicName("TopicArn")
	if e != nil {
		return nil, e
	}
	t, err := c.h.Topics.Get(c.ctx, c.project, name)
	if err != nil {
		return nil, serviceError(err)
	}
	subs, err := c.h.Topics.Subscriptions(c.ctx, c.project, name)
	if err != nil {
		return nil, serviceError(err)
	}
	arn := c.topicArn(t.Name)
	pending := 0
	for _, s := range subs {
		if s.Pending {
			pending++
		}
	}
	attrs := map[string]string{
		"TopicArn": arn, "Owner": c.project, "DisplayName": "",
		"SubscriptionsConfirmed": strconv.Itoa(len(subs) - pending), "SubscriptionsPending": strconv.Itoa(pending), "SubscriptionsDeleted": "0",
		"Policy":                  defaultPolicy(c.project, arn),
		"EffectiveDeliveryPolicy": `{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}`,
	}
	for k, v := range t.Attributes {
		attrs[k] = v
	}
	if t.FIFO {
		attrs["FifoTopic"] = "true"
		attrs["ContentBasedDeduplication"] = strconv.FormatBool(t.ContentDedup)
	}
	return attributes(attrs), nil
}

// defaultPolicy is the access policy SNS shows for a topic created without one.
func defaultPolicy(account, arn string) string {
	return `{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},` +
		`"Action":["SNS:GetTopicAttributes","SNS:SetTopicAttributes","SNS:AddPermission","SNS:RemovePermission","SNS:DeleteTopic","SNS:Subscribe","SNS:ListSubscriptionsByTopic","SNS:Publish"],` +
		`"Resource":"` + arn + `","Condition":{"StringEquals":{"AWS:SourceOwner":"` + account + `"}}}]}`
}

func setTopicAttributes(c *call) (any, *Error) {
	name, e := c.topicName("TopicArn")
	if e != nil {
		return nil, e
	}
	attr := c.form.Get("AttributeName")
	if attr == "" {
		return nil, errParam("AttributeName")
	}
	if err := c.h.Topics.SetAttribute(c.ctx, c.project, name, attr, c.form.Get("AttributeValue")); err != nil {
		return nil, serviceError(err)
	}
	return nil, nil
}

func subscribe(c *call) (any, *Error) {
	name, e := c.topicName("TopicArn")
	if e != nil {
		return nil, e
	}
	s, err := c.h.Topics.Subscribe(c.ctx, c.project, name, topic.SubscribeInput{Protocol: c.form.Get("Protocol"), Endpoint: c.form.Get("Endpoint"),
		Attributes: entryMap(c.form, "Attributes.entry", "key", "value"), TopicArn: c.topicArn(name)})
	if err != nil {
		return nil, serviceError(err)
	}
	// A subscription waiting for its endpoint's confirmation is "pending
	// confirmation" unless the caller asks for its ARN, as in SNS.
	if s.Pending && c.form.Get("ReturnSubscriptionArn") != "true" {
		return subscribeResult{SubscriptionArn: "pending confirmation"}, nil
	}
	return subscribeResult{SubscriptionArn: c.subscriptionArn(s)}, nil
}

func confirmSubscription(c *call) (any, *Error) {
	name, e := c.topicName("TopicArn")
	if e != nil {
		return nil, e
	}
	authOnUnsubscribe, e := boolParam(c.form.Get("AuthenticateOnUnsubscribe"), "AuthenticateOnUnsubscribe")
	if e != nil {
		return nil, e
	}
	s, err := c.h.Topics.ConfirmSubscription(c.ctx, c.project, name, c.form.Get("Token"), true, authOnUnsubscribe)
	if err != nil {
		return nil, serviceError(err)
	}
	return subscribeResult{SubscriptionArn: c.subscriptionArn(s)}, nil
}

// boolParam reads an optional boolean parameter.
func boolParam(v, param string) (bool, *Error) {
	switch strings.ToLower(v) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, errInvalid("Invalid parameter: %s", param)
}

func (c *call) subscription(param string) (topic.Subscription, *Error) {
	name, id, e := c.subscriptionID(param)
	if e != nil {
		return topic.Subscription{}, e
	}
	s, err := c.h.Topics.GetSubscription(c.ctx, c.project, id)
	if err != nil {
		return s, serviceError(err)
	}
	if s.Topic != name {
		return s, errNotFound("Subscription")
	}
	return s, nil
}

func unsubscribe(c *call) (any, *Error) {
	s, e := c.subscription("SubscriptionArn")
	if e != nil {
		return nil, e
	}
	if err := c.h.Topics.Unsubscribe(c.ctx, c.project, s.ID); err != nil {
		return nil, serviceError(err)
	}
	return nil, nil
}

func (c *call) subscriptionList(name string) (any, *Error) {
	subs, err := c.h.Topics.Subscriptions(c.ctx, c.project, name)
	if err != nil {
		return nil, serviceError(err)
	}
	start, next, e := page(c.form, len(subs))
	if e != nil {
		return nil, e
	}
	var r listSubscriptionsResult
	for _, s := range subs[start:min(len(subs), start+pageSize)] {
		arn := c.subscriptionArn(s)
		if s.Pending {
			arn = "PendingConfirmation"
		}
		r.Subscriptions.Member = append(r.Subscriptions.Member, subscriptionMember{SubscriptionArn: arn, Owner: c.project,
			Protocol: s.Protocol, Endpoint: s.Endpoint, TopicArn: c.topicArn(s.Topic)})
	}
	r.NextToken = next
	return r, nil
}

func listSubscriptions(c *call) (any, *Error) { return c.subscriptionList("") }

func listSubscriptionsByTopic(c *call) (any, *Error) {
	name, e := c.topicName("TopicArn")
	if e != nil {
		return nil, e
	}
	if _, err := c.h.Topics.Get(c.ctx, c.project, name); err != nil {
		return nil, serviceError(err)
	}
	return c.subscriptionList(name)
}

func getSubscriptionAttributes(c *call) (any, *Error) {
	s, e := c.subscription("SubscriptionArn")
	if e != nil {
		return nil, e
	}
	attrs := map[string]string{
		"SubscriptionArn": c.subscriptionArn(s), "TopicArn": c.topicArn(s.Topic), "Owner": c.project, "Protocol": s.Protocol,
		"Endpoint": s.Endpoint, "PendingConfirmation": strconv.FormatBool(s.Pending),
		"ConfirmationWasAuthenticated": strconv.FormatBool(s.Authenticated || !s.Pending && s.TokenSHA256 == ""),
		"RawMessageDelivery":           strconv.FormatBool(s.Raw), "SubscriptionPrincipal": "arn:aws:iam::" + c.project + ":user/carrier",
	}
	if len(s.FilterPolicy) > 0 {
		attrs["FilterPolicy"] = string(s.FilterPolicy)
		attrs["FilterPolicyScope"] = s.FilterPolicyScope
	}
	if s.RedrivePolicy != "" {
		attrs["RedrivePolicy"] = s.RedrivePolicy
	}
	return attributes(attrs), nil
}

func setSubscriptionAttributes(c *call) (any, *Error) {
	s, e := c.subscription("SubscriptionArn")
	if e != nil {
		return nil, e
	}
	attr := c.form.Get("AttributeName")
	if attr == "" {
		return nil, errParam("AttributeName")
	}
	if _, err := c.h.Topics.SetSubscriptionAttribute(c.ctx, c.project, s.ID, attr, c.form.Get("AttributeValue")); err != nil {
		return nil, serviceError(err)
	}
	return nil, nil
}

func message(form map[string][]string, prefix string) (topic.Message, *Error) {
	get := func(k string) string {
		if v := form[prefix+k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	attrs, e := messageAttributes(form, prefix+"MessageAttributes")
	if e != nil {
		return topic.Message{}, e
	}
	return topic.Message{Message: get("Message"), Subject: get("Subject"), Attributes: attrs, Structure: get("MessageStructure"),
		GroupID: get("MessageGroupId"), DeduplicationID: get("MessageDeduplicationId")}, nil
}

func publish(c *call) (any, *Error) {
	if c.form.Get("TargetArn") != "" || c.form.Get("PhoneNumber") != "" {
		return nil, errInvalid("Invalid parameter: Carrier publishes to topics only (TopicArn); TargetArn and PhoneNumber are not supported")
	}
	name, e := c.topicName("TopicArn")
	if e != nil {
		return nil, e
	}
	m, e := message(c.form, "")
	if e != nil {
		return nil, e
	}
	p, err := c.h.Topics.Publish(c.ctx, c.project, name, m)
	if err != nil {
		return nil, serviceError(err)
	}
	return publishResult{MessageID: p.MessageID, SequenceNumber: p.SequenceNumber}, nil
}

func publishBatch(c *call) (any, *Error) {
	name, e := c.topicName("TopicArn")
	if e != nil {
		return nil, e
	}
	var entries []topic.BatchEntry
	for n := 1; n <= topic.MaxBatchEntries+1; n++ {
		prefix := fmt.Sprintf("PublishBatchRequestEntries.member.%d.", n)
		id, ok := c.form[prefix+"Id"]
		if !ok {
			break
		}
		m, e := message(c.form, prefix)
		if e != nil {
			return nil, e
		}
		entries = append(entries, topic.BatchEntry{ID: id[0], Message: m})
	}
	results, err := c.h.Topics.PublishBatch(c.ctx, c.project, name, entries)
	if err != nil {
		return nil, serviceError(err)
	}
	var r publishBatchResult
	for _, res := range results {
		if res.Err != nil {
			se := serviceError(res.Err)
			r.Failed.Member = append(r.Failed.Member, batchFailure{ID: res.ID, Code: se.Code, Message: se.Message, SenderFault: se.Status < 500})
			continue
		}
		r.Successful.Member = append(r.Successful.Member, batchSuccess{ID: res.ID, MessageID: res.Published.MessageID, SequenceNumber: res.Published.SequenceNumber})
	}
	return r, nil
}

func tagResource(c *call) (any, *Error) {
	name, e := c.topicName("ResourceArn")
	if e != nil {
		return nil, e
	}
	if err := c.h.Topics.Tag(c.ctx, c.project, name, entryMap(c.form, "Tags.member", "Key", "Value")); err != nil {
		return nil, resourceError(err)
	}
	return empty{}, nil
}

func untagResource(c *call) (any, *Error) {
	name, e := c.topicName("ResourceArn")
	if e != nil {
		return nil, e
	}
	if err := c.h.Topics.Untag(c.ctx, c.project, name, list(c.form, "TagKeys.member")); err != nil {
		return nil, resourceError(err)
	}
	return empty{}, nil
}

func listTagsForResource(c *call) (any, *Error) {
	name, e := c.topicName("ResourceArn")
	if e != nil {
		return nil, e
	}
	t, err := c.h.Topics.Get(c.ctx, c.project, name)
	if err != nil {
		return nil, resourceError(err)
	}
	var r listTagsResult
	for _, en := range mapEntries(t.Tags) {
		r.Tags.Member = append(r.Tags.Member, tag{en.Key, en.Value})
	}
	return r, nil
}

// resourceError is serviceError for the tagging actions, which answer a
// missing resource as ResourceNotFound.
func resourceError(err error) *Error {
	e := serviceError(err)
	if e.Code == "NotFound" {
		return newErr(404, "ResourceNotFound", "Resource does not exist")
	}
	return e
}

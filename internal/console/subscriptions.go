package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"carrier/internal/dest"
	"carrier/internal/filter"
	"carrier/internal/store"
	"carrier/internal/subscription"
)

// subView is a subscription as the pages show it: no secret, ever.
type subView struct {
	store.Subscription
	Destination string
	SuccessRate float64 // of finished deliveries
	HasRate     bool
}

func (c *Console) view(sub store.Subscription) subView {
	v := subView{Subscription: sub}
	v.Secret, v.PreviousSecret = "", ""
	v.Headers = nil
	if k, ok := c.d.Destinations.Lookup(sub.Kind); ok {
		v.Destination = k.Summary(destinationSettings(k, sub))
		v.Subscription.Destination = k.Redact(sub)
	}
	if done := sub.SuccessfulDeliveries + sub.FailedDeliveries; done > 0 {
		v.SuccessRate, v.HasRate = float64(sub.SuccessfulDeliveries)/float64(done), true
	}
	return v
}

func (c *Console) subscriptionsPage(w http.ResponseWriter, r *http.Request) {
	subs, err := c.d.Subscriptions.List(r.Context(), project(r), subscription.Subscriptions)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	views := make([]subView, len(subs))
	for i, s := range subs {
		views[i] = c.view(s)
	}
	c.render(w, r, "subscriptions", "Endpoints and subscriptions", views, http.StatusOK)
}

type subData struct {
	Sub    subView
	Policy string // the filter policy, indented
	Scope  string
	Sample string // the sample event of the policy tester
	Result *filterResult
	Recent []store.Delivery
	// NewSecret is a secret just rotated, shown on that answer alone.
	NewSecret     string
	PreviousUntil *time.Time
}

type filterResult struct {
	Match bool
	Error string
}

const defaultSample = `{
  "attributes": {"status": "failed"},
  "data": {"task_id": "t1", "status": "failed"}
}`

func (c *Console) subscriptionData(r *http.Request, id string) (subData, error) {
	ctx, pid := r.Context(), project(r)
	sub, err := c.d.Subscriptions.Get(ctx, pid, id, subscription.Subscriptions)
	if err != nil {
		return subData{}, err
	}
	data := subData{Sub: c.view(sub), Scope: sub.FilterScope, Sample: defaultSample}
	if len(sub.FilterPolicy) > 0 && string(sub.FilterPolicy) != "null" {
		var v any
		json.Unmarshal(sub.FilterPolicy, &v)
		b, _ := json.MarshalIndent(v, "", "  ")
		data.Policy = string(b)
	}
	if data.Scope == "" {
		data.Scope = filter.ScopeAttributes
	}
	data.Recent, _ = c.d.Store.DeliveryLog(ctx, store.DeliveryQuery{ProjectID: pid, SubscriptionID: id, Limit: 10})
	return data, nil
}

func (c *Console) subscriptionPage(w http.ResponseWriter, r *http.Request) {
	data, err := c.subscriptionData(r, r.PathValue("id"))
	if err != nil {
		c.failSub(w, r, err)
		return
	}
	c.render(w, r, "subscription", data.Sub.Name, data, http.StatusOK)
}

func (c *Console) failSub(w http.ResponseWriter, r *http.Request, err error) {
	var nf *subscription.NotFoundError
	if errors.As(err, &nf) {
		err = store.ErrNotFound
	}
	c.fail(w, r, err)
}

// setActive activates or deactivates a subscription.
func (c *Console) setActive(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	active := r.PostFormValue("active") == "true"
	if _, err := c.d.Subscriptions.SetActive(r.Context(), project(r), id, subscription.Subscriptions, active); err != nil {
		c.back(w, r, "/subscriptions/"+id, "", err.Error())
		return
	}
	msg := "Deactivated: new deliveries are held until it is activated."
	if active {
		msg = "Activated: held deliveries are being sent."
	}
	c.back(w, r, "/subscriptions/"+id, msg, "")
}

// sendTest publishes a test event to one subscription.
func (c *Console) sendTest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, _, err := c.d.Subscriptions.SendTest(r.Context(), project(r), id, subscription.Subscriptions); err != nil {
		c.back(w, r, "/subscriptions/"+id, "", err.Error())
		return
	}
	c.back(w, r, "/subscriptions/"+id, "Test event sent.", "")
}

// policyInput reads the policy form: an empty policy removes it.
func policyInput(r *http.Request) (json.RawMessage, string) {
	policy := strings.TrimSpace(r.PostFormValue("policy"))
	scope := r.PostFormValue("scope")
	if scope != filter.ScopeBody {
		scope = filter.ScopeAttributes
	}
	if policy == "" {
		return json.RawMessage("null"), scope
	}
	return json.RawMessage(policy), scope
}

// saveFilter saves a subscription's filter policy, checked by the
// subscription service as the API checks it.
func (c *Console) saveFilter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	policy, scope := policyInput(r)
	if !json.Valid(policy) {
		c.back(w, r, "/subscriptions/"+id, "", "The filter policy is not JSON.")
		return
	}
	_, err := c.d.Subscriptions.Update(r.Context(), project(r), id, subscription.Input{API: subscription.Subscriptions, FilterPolicy: policy, FilterScope: &scope})
	var fe *dest.FieldError
	switch {
	case errors.As(err, &fe):
		c.back(w, r, "/subscriptions/"+id, "", fe.Error())
		return
	case err != nil:
		c.back(w, r, "/subscriptions/"+id, "", err.Error())
		return
	}
	c.back(w, r, "/subscriptions/"+id, "Filter policy saved.", "")
}

// testFilter evaluates the policy in the form against the sample event in
// the form, without saving anything.
func (c *Console) testFilter(w http.ResponseWriter, r *http.Request) {
	data, err := c.subscriptionData(r, r.PathValue("id"))
	if err != nil {
		c.failSub(w, r, err)
		return
	}
	policy, scope := policyInput(r)
	data.Policy, data.Scope, data.Sample = r.PostFormValue("policy"), scope, r.PostFormValue("sample")
	data.Result = evaluate(policy, scope, data.Sample)
	c.render(w, r, "subscription", data.Sub.Name, data, http.StatusOK)
}

// evaluate runs a policy over a sample event {"attributes": {…}, "data": …}.
func evaluate(policy json.RawMessage, scope, sample string) *filterResult {
	if string(policy) == "null" {
		return &filterResult{Match: true}
	}
	p, err := filter.Compile(policy, scope)
	if err != nil {
		return &filterResult{Error: "policy: " + err.Error()}
	}
	var ev struct {
		Attributes map[string]any `json:"attributes"`
		Data       any            `json:"data"`
	}
	dec := json.NewDecoder(strings.NewReader(sample))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return &filterResult{Error: `sample: not a JSON object {"attributes": {…}, "data": …}: ` + err.Error()}
	}
	if scope == filter.ScopeBody {
		var data any
		b, _ := json.Marshal(ev.Data)
		json.Unmarshal(b, &data)
		return &filterResult{Match: p.MatchBody(data)}
	}
	attrs := map[string]string{}
	for k, v := range ev.Attributes {
		switch t := v.(type) {
		case string:
			attrs[k] = t
		default:
			b, _ := json.Marshal(t)
			attrs[k] = string(b)
		}
	}
	return &filterResult{Match: p.MatchAttributes(attrs)}
}

// rotateSecret gives a webhook a new signing secret and shows it on this
// answer only (the page it redirects nowhere: reloading does not show it
// again, and no other page ever does).
func (c *Console) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sub, err := c.d.Subscriptions.RotateSecret(r.Context(), project(r), id, subscription.Subscriptions, subscription.Rotation{})
	if err != nil {
		c.back(w, r, "/subscriptions/"+id, "", err.Error())
		return
	}
	data, err := c.subscriptionData(r, id)
	if err != nil {
		c.failSub(w, r, err)
		return
	}
	data.NewSecret = sub.Secret
	data.PreviousUntil = sub.PreviousSecretUntil
	c.render(w, r, "subscription", data.Sub.Name, data, http.StatusOK)
}

// recoverFailed replays every failed delivery of a subscription since it
// last succeeded (what failed while it was down or disabled).
func (c *Console) recoverFailed(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sub, err := c.d.Subscriptions.Get(r.Context(), project(r), id, subscription.Subscriptions)
	if err != nil {
		c.failSub(w, r, err)
		return
	}
	from := sub.CreatedAt
	if sub.LastSuccessAt != nil {
		from = *sub.LastSuccessAt
	}
	n, err := c.d.Subscriptions.Recover(r.Context(), project(r), id, subscription.Subscriptions, subscription.Window{From: &from})
	if err != nil {
		c.back(w, r, "/subscriptions/"+id, "", err.Error())
		return
	}
	c.back(w, r, "/subscriptions/"+id, fmt.Sprintf("%d failed deliveries since %s are being sent again.", n, from.UTC().Format("2006-01-02 15:04:05")), "")
}

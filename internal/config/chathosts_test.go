package config

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestChatCompatibleHosts(t *testing.T) {
	noEnv := func(string) string { return "" }
	c, err := Load("serve", []string{"--chat-compatible-hosts= Chat.Example.com, mm.example.org:8065,,[::1]:9000,10.0.0.5,rocket_chat"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"chat.example.com", "mm.example.org:8065", "[::1]:9000", "10.0.0.5", "rocket_chat"}
	if !reflect.DeepEqual(c.ChatCompatibleHosts, want) {
		t.Errorf("ChatCompatibleHosts = %q, want %q", c.ChatCompatibleHosts, want)
	}
	c, err = Load("serve", nil, func(k string) string {
		if k == "CARRIER_CHAT_COMPATIBLE_HOSTS" {
			return "mattermost.internal"
		}
		return ""
	}, io.Discard)
	if err != nil || !reflect.DeepEqual(c.ChatCompatibleHosts, []string{"mattermost.internal"}) {
		t.Errorf("from the environment: %q, %v", c.ChatCompatibleHosts, err)
	}
	if c, err := Load("serve", nil, noEnv, io.Discard); err != nil || len(c.ChatCompatibleHosts) != 0 {
		t.Errorf("default: %q, %v; want none", c.ChatCompatibleHosts, err)
	}
	for _, bad := range []string{"https://chat.example.com", "chat.example.com/hooks", "*.example.com", "chat.example.com:0", "chat.example.com:http", "chat.example.com:", "user@chat.example.com", "-bad-.example"} {
		_, err := Load("serve", []string{"--chat-compatible-hosts=" + bad}, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "CARRIER_CHAT_COMPATIBLE_HOSTS") {
			t.Errorf("%q: %v, want an error naming CARRIER_CHAT_COMPATIBLE_HOSTS", bad, err)
		}
	}
}

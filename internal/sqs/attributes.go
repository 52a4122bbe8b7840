package sqs

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"
)

type messageAttribute struct {
	DataType         string   `json:"DataType"`
	StringValue      *string  `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty" query:"StringListValue"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty" query:"BinaryListValue"`
}

func checkAttrName(name string) *Error {
	bad := len(name) == 0 || len(name) > 256 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..")
	lower := strings.ToLower(name)
	bad = bad || strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.")
	for _, r := range name {
		bad = bad || !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}
	if bad {
		return errInvalidParameter("Message attribute name '%s' is invalid.", name)
	}
	return nil
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// userAttributes splits stored attributes into SQS message attributes.
func userAttributes(stored map[string]string) map[string]messageAttribute {
	out := map[string]messageAttribute{}
	for k, v := range stored {
		if strings.HasPrefix(k, TypeAttrPrefix) {
			continue
		}
		dt := stored[TypeAttrPrefix+k]
		if dt == "" {
			dt = "String"
		}
		out[k] = messageAttribute{DataType: dt, StringValue: &v}
	}
	return out
}

// attributesMD5 is MD5OfMessageAttributes as SQS computes it: for each
// attribute by name, the length-prefixed (4 bytes, big endian) name and data
// type, the transport type (1: string) and the length-prefixed value.
func attributesMD5(attrs map[string]messageAttribute) string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	put := func(s string) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(s)))
		h.Write(l[:])
		h.Write([]byte(s))
	}
	for _, n := range names {
		a := attrs[n]
		put(n)
		put(a.DataType)
		h.Write([]byte{1})
		put(*a.StringValue)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// attrWanted matches an attribute name against MessageAttributeNames
// ("All", ".*", "prefix.*" or a name).
func attrWanted(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == "All" || p == ".*" || p == name {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, ".*"); ok && strings.HasPrefix(name, prefix+".") {
			return true
		}
	}
	return false
}

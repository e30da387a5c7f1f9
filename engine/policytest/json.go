package policytest

import (
	"encoding/json"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// nodeJSON converts a YAML value to the JSON the engine reads; an absent
// value gives nil. Working from the node rather than from decoded Go values
// keeps integers exact and lets errors point at a line.
func nodeJSON(n *yaml.Node) (json.RawMessage, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	return appendJSON(nil, n)
}

func appendJSON(b []byte, n *yaml.Node) ([]byte, error) {
	var err error
	switch n.Kind {
	case yaml.DocumentNode:
		return appendJSON(b, n.Content[0])
	case yaml.AliasNode:
		return appendJSON(b, n.Alias)
	case yaml.MappingNode:
		b = append(b, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("line %d: keys must be plain strings", k.Line)
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k.Value)
			b = append(b, ':')
			if b, err = appendJSON(b, v); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case yaml.SequenceNode:
		b = append(b, '[')
		for i, v := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, v); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case yaml.ScalarNode:
		return appendScalar(b, n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func appendScalar(b []byte, n *yaml.Node) ([]byte, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		return appendString(b, n.Value), nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, fmt.Errorf("line %d: %s is not a 64-bit integer", n.Line, n.Value)
		}
		return strconv.AppendInt(b, i, 10), nil
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return strconv.AppendBool(b, v), nil
	case "!!null":
		return append(b, "null"...), nil
	case "!!float":
		return nil, fmt.Errorf(`line %d: %s: Cedar has no floating-point numbers; write a decimal as {__extn: {fn: decimal, arg: "%s"}}`, n.Line, n.Value, n.Value)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML value of type %s", n.Line, n.ShortTag())
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // marshalling a string cannot fail
	return append(b, q...)
}

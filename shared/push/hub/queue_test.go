package hub

import (
	"bytes"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestTheQueueIsBoundedByMessagesAndByBytesWhicheverComesFirst(t *testing.T) {
	const max = 131072 // the largest message
	big := bytes.Repeat([]byte("x"), max)
	small := []byte(`{"type":"pong"}`)
	tests := []struct {
		name         string
		maxLen, maxB int
		accepted     [][]byte // pushed in order, all taken
		popped       int      // messages popped before the last accepted one
		refused      []byte
	}{
		{"the message bound is reached first with small messages", 3, 4 << 20, [][]byte{small, small, small}, 0, small},
		{"the byte bound is reached first with large messages", 100, 2 * max, [][]byte{big, big}, 0, small},
		{"bytes popped no longer count", 100, 2 * max, [][]byte{big, big, big}, 1, big},
		{"an empty queue takes the largest message under the smallest byte bound", 100, max, [][]byte{big}, 0, small},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue(tt.maxLen, tt.maxB)
			for i, data := range tt.accepted {
				if i == len(tt.accepted)-1 {
					for range tt.popped {
						if _, ok := q.Pop(); !ok {
							t.Fatal("queue empty")
						}
					}
				}
				if !q.Push(data) {
					t.Fatalf("push %d (%d bytes) refused at %d messages, %d bytes", i, len(data), q.Len(), q.Size())
				}
			}
			lenBefore, sizeBefore := q.Len(), q.Size()
			if q.Push(tt.refused) {
				t.Fatalf("push over the bound accepted at %d messages, %d bytes", lenBefore, sizeBefore)
			}
			if q.Len() != lenBefore || q.Size() != sizeBefore {
				t.Fatal("a refused push changed the queue")
			}
		})
	}
}

func TestAnEmptiedQueueHoldsNoStorage(t *testing.T) {
	q := NewQueue(1000, 1<<20)
	for range 100 {
		q.Push([]byte("m"))
	}
	for q.Len() > 0 {
		q.Pop()
	}
	if q.ring != nil || q.Size() != 0 {
		t.Fatalf("an empty queue holds a ring of %d and %d bytes", len(q.ring), q.Size())
	}
	if _, ok := q.Pop(); ok {
		t.Fatal("popped from an empty queue")
	}
}

// TestTheQueueBehavesAsABoundedFIFO drives random pushes and pops against a
// plain slice as the model: order, length, size and refusals agree.
func TestTheQueueBehavesAsABoundedFIFO(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		maxLen := rapid.IntRange(1, 40).Draw(t, "maxLen")
		maxBytes := rapid.IntRange(8, 400).Draw(t, "maxBytes")
		q := NewQueue(maxLen, maxBytes)
		var model [][]byte
		size := 0
		for i := range rapid.IntRange(0, 300).Draw(t, "steps") {
			if rapid.Bool().Draw(t, "push") {
				data := []byte(strings.Repeat("y", rapid.IntRange(0, 8).Draw(t, "len")) + string(rune('a'+i%26)))
				fits := len(model) < maxLen && size+len(data) <= maxBytes
				if got := q.Push(data); got != fits {
					t.Fatalf("Push with %d messages, %d bytes = %v, want %v", len(model), size, got, fits)
				}
				if fits {
					model = append(model, data)
					size += len(data)
				}
			} else {
				got, ok := q.Pop()
				if ok != (len(model) > 0) {
					t.Fatalf("Pop ok = %v with %d modelled", ok, len(model))
				}
				if ok {
					if !bytes.Equal(got, model[0]) {
						t.Fatalf("Pop = %q, want %q", got, model[0])
					}
					size -= len(model[0])
					model = model[1:]
				}
			}
			if q.Len() != len(model) || q.Size() != size {
				t.Fatalf("Len, Size = %d, %d; want %d, %d", q.Len(), q.Size(), len(model), size)
			}
		}
	})
}

package hub

// Queue is one connection's outgoing queue: messages in order, bounded by a
// number of messages and by their total size, whichever is reached first.
// The byte bound matters as much as the count: 1,000 messages of 128 KB
// would hold 128 MB for one slow client.
//
// It is a ring that grows on demand and lets its storage go when it
// empties, rather than a buffered channel, which allocates its whole buffer
// up front (24 KB per connection for 1,000 messages) and so would cost ten
// thousand mostly idle connections a quarter of a gigabyte for nothing.
//
// A Queue is not safe for concurrent use: its connection's mutex guards it.
type Queue struct {
	ring     [][]byte // len(ring) is 0 or a power of two
	head, n  int      // index of the oldest message; number of messages
	size     int      // bytes queued
	maxLen   int
	maxBytes int
}

// minStorage is the ring's smallest non-empty length.
const minStorage = 4

// NewQueue returns an empty queue of at most maxLen messages and maxBytes
// bytes. maxBytes must be at least the largest message, or that message
// would never fit even an empty queue.
func NewQueue(maxLen, maxBytes int) Queue {
	return Queue{maxLen: maxLen, maxBytes: maxBytes}
}

// Push appends data and reports true, or reports false and changes nothing
// when data would take the queue over either bound.
func (q *Queue) Push(data []byte) bool {
	if q.n >= q.maxLen || q.size+len(data) > q.maxBytes {
		return false
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = data
	q.n++
	q.size += len(data)
	return true
}

// Pop removes and returns the oldest message, if any. An emptied queue lets
// its storage go: an idle connection holds none.
func (q *Queue) Pop() ([]byte, bool) {
	if q.n == 0 {
		return nil, false
	}
	data := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.n--
	q.size -= len(data)
	if q.n == 0 {
		q.ring, q.head = nil, 0
	}
	return data, true
}

// Len returns the number of messages queued.
func (q *Queue) Len() int { return q.n }

// Size returns the bytes queued.
func (q *Queue) Size() int { return q.size }

// grow doubles the ring, keeping the messages in order from index 0.
func (q *Queue) grow() {
	size := max(minStorage, 2*len(q.ring))
	ring := make([][]byte, size)
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
	}
	q.ring, q.head = ring, 0
}

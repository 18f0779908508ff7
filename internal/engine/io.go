package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// ---------------------------------------------------------------------------
// The goroutines: dial and read, write, authenticate
// ---------------------------------------------------------------------------

func (b *Engine) startDial(gen uint64, address string) {
	ctx, cancel := context.WithCancel(b.ctx)
	b.dialing[gen] = cancel
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		// The dialling goroutine goes on as the connection's reader
		// rather than starting one: one goroutine per connection
		// instead of two whose stacks come and go. The dial is a call
		// of its own so that its frame is gone while the reader waits.
		if c := b.dial(ctx, cancel, gen, address); c != nil {
			b.readLoop(c)
		}
	}()
}

// dial connects generation gen to address and hands the connection to
// the core in one step; it returns nil if the dial failed or is no longer
// wanted.
func (b *Engine) dial(ctx context.Context, cancel context.CancelFunc, gen uint64, address string) *connection {
	c, err := b.cfg.Transport.Dial(ctx, address)
	cancel() // the context is the dial's only
	var conn *connection
	b.doDetached(func(now time.Time) {
		delete(b.dialing, gen)
		current := gen == b.core.Gen() && b.core.State() == core.StateConnecting && !b.stopped
		if err == nil && !current {
			c.Close()
			err = errors.New("abandoned")
		}
		if err != nil {
			b.core.ConnFailed(now, gen, fmt.Errorf("pulsarconn: dial %s: %w", address, err))
			return
		}
		conn = newConnection(gen, c, b.cfg.WriteLimit, &b.wg, b.writeFailed, &b.bytesOut)
		b.conn.Store(conn)
		b.core.ConnUp(now, gen)
	})
	return conn
}

// closeGen closes the connection (or cancels the dial) of generation gen.
func (b *Engine) closeGen(gen uint64) {
	if cancel, ok := b.dialing[gen]; ok {
		cancel()
	}
	if cancel, ok := b.authing[gen]; ok {
		cancel() // an Authenticator call outlives no attempt
	}
	if c := b.conn.Load(); c != nil && c.gen == gen {
		c.close()
		b.conn.Store(nil)
		b.queue.WakeLocked() // its reader may be held back by the delivery limit
	}
}

// startAuth calls the Authenticator for connection gen, with a context
// that ends with that connection or attempt (closeGen), so that a call
// that hangs is not left behind by every connect timeout.
func (b *Engine) startAuth(gen uint64, initial bool, challenge []byte) {
	ctx, cancel := context.WithCancel(b.ctx)
	b.authing[gen] = cancel
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer cancel()
		var data []byte
		var err error
		switch {
		case b.cfg.Auth == nil:
			// The broker challenged a connection that presented no
			// credentials: answer with none rather than leave it
			// hanging.
		case initial:
			data, err = b.cfg.Auth.Initial(ctx)
		default:
			data, err = b.cfg.Auth.Challenge(ctx, challenge)
		}
		b.do(func(now time.Time) {
			delete(b.authing, gen)
			b.core.AuthResult(now, gen, initial, data, err)
		})
	}()
}

// maxReadBatch bounds how many frames the reader hands to the core under
// one acquisition of the lock.
const maxReadBatch = 64

// readLoop reads c until it fails, is closed, or hands its reading over
// (handBatch).
func (b *Engine) readLoop(c *connection) {
	b.mu.Lock()
	max := b.core.MaxFrameSize()
	b.mu.Unlock()
	c.fr = frame.NewReader(c.conn, max)
	b.read(c)
}

// read reads c with c.fr, which it owns until it fails or hands the
// reading over (keepReadingLocked).
func (b *Engine) read(c *connection) {
	fr := c.fr
	// The batch grows with the load, up to maxReadBatch; an idle
	// connection's holds one frame. (A batch made at full size here would
	// sit on the reader's stack and keep it from shrinking.)
	var batch []*frame.Frame
	for {
		// Wait for traffic here, at the top of the goroutine's stack
		// (see Reader.Fill).
		batch = batch[:0]
		err := fr.Fill()
		if err == nil {
			batch, err = b.readBatch(fr, batch)
		}
		if len(batch) > 0 && b.handleBatch(c, batch, err == nil) {
			return // another goroutine reads c now
		}
		if err != nil {
			b.readFailed(c, err)
			return
		}
	}
}

// readBatch reads the frame the read blocks for, then every whole frame
// the same read already brought: under load, one lock and one flush serve
// many frames instead of one each. It stops after a CONNECTED, which may
// change the frame limit. Kept apart from readLoop so that the frame the
// reader goroutine blocks in is small (with Reader.Fill): an idle
// connection's reader stack then shrinks to 4 KiB at the next collections
// instead of staying at 8.
func (b *Engine) readBatch(fr *frame.Reader, batch []*frame.Frame) ([]*frame.Frame, error) {
	for {
		f, size, err := fr.NextFrame()
		if size > 0 { // a frame read, even one Parse refused
			b.framesIn.Add(1)
			b.bytesIn.Add(uint64(size) + 4)
		}
		if err != nil {
			return batch, err
		}
		batch = append(batch, f)
		if len(batch) == maxReadBatch || f.Command.GetType() == pulsarpb.BaseCommand_CONNECTED || !fr.Ready() {
			return batch, nil
		}
	}
}

// handleBatch hands the frames read on c to the core under one lock, sets
// the frame size limit to read on with, then delivers. A reader that
// drains the delivery queue itself runs user code meanwhile; if a request
// then waits for an answer (the Handler's own, say), reading goes on in
// another goroutine (keepReadingLocked), and handleBatch reports that
// this one must stop reading. canHand says that the reader may be handed
// over (it has read no error).
func (b *Engine) handleBatch(c *connection, batch []*frame.Frame, canHand bool) (handed bool) {
	b.mu.Lock()
	now := b.cfg.Clock.Now()
	inUse := b.core.InUse()
	for _, f := range batch {
		b.core.HandleFrame(now, c.gen, f)
	}
	if inUse || b.core.InUse() { // as step does: an answer ends a use
		b.usedAt = now
	}
	c.fr.SetMaxFrameSize(b.core.MaxFrameSize())
	drain := b.flushLocked(now)
	// The waiters completed in the flush took what they need of the
	// answers in b.spent, which come in the batch's order.
	// The lent answers' frames go to their waiters, queued to the
	// drainer, which cannot take them before the lock is released.
	j, k := 0, 0
	for i, f := range batch {
		switch {
		case j < len(b.spent) && f.Command == b.spent[j]:
			b.spent[j] = nil
			j++
			c.fr.Recycle(f)
		case k < len(b.lent) && f.Command == b.lent[k].answer:
			b.lent[k].frame, b.lent[k].answer = f, nil
			b.lent[k] = nil
			k++
		}
		batch[i] = nil
	}
	b.spent = b.spent[:0]
	clear(b.lent[k:]) // none, unless an answer came from elsewhere
	b.lent = b.lent[:0]
	if !drain {
		// Hold the reader back while the pushes it read wait for a
		// slow Handler (see deliver.Queue.OverLimitLocked), until c is
		// closed.
		for b.queue.OverLimitLocked() && b.conn.Load() == c {
			b.queue.WaitLocked()
		}
	}
	turn := c.turn
	c.busy = drain && canHand
	b.mu.Unlock()
	if !drain {
		return false
	}
	b.queue.Drain()
	if !canHand {
		return false
	}
	b.mu.Lock()
	handed = c.turn != turn
	if !handed {
		c.busy = false
	}
	b.mu.Unlock()
	return handed
}

// keepReadingLocked hands the reading of the established connection to a
// new goroutine if its reader is running user code (handleBatch): called
// while a request waits for an answer, which that reader would not read
// until the user code returns, and never if that code is what waits.
func (b *Engine) keepReadingLocked() {
	c := b.conn.Load()
	if c == nil || !c.busy {
		return
	}
	c.busy = false
	c.turn++
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.read(c)
	}()
}

// readFailed tells the core that reading c failed with err.
func (b *Engine) readFailed(c *connection, err error) {
	if errors.Is(err, frame.ErrMalformed) || errors.Is(err, frame.ErrFrameTooLarge) {
		err = fmt.Errorf("%w: %w", core.ErrProtocol, err)
	} else {
		err = fmt.Errorf("pulsarconn: read: %w", err)
	}
	b.do(func(now time.Time) { b.core.ConnFailed(now, c.gen, err) })
}

func (b *Engine) writeFailed(gen uint64, err error) {
	b.do(func(now time.Time) { b.core.ConnFailed(now, gen, fmt.Errorf("pulsarconn: write: %w", err)) })
}

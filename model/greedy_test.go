package model

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

func readGreedyRef(t *testing.T) []int {
	t.Helper()
	raw, err := os.ReadFile(testutil.SharedData(t, "stories260K_greedy256.json"))
	require.NoError(t, err)
	var ref struct {
		StartToken int   `json:"start_token"`
		Steps      int   `json:"steps"`
		IDs        []int `json:"ids"`
	}
	require.NoError(t, json.Unmarshal(raw, &ref))
	require.Equal(t, 1, ref.StartToken)
	require.Len(t, ref.IDs, ref.Steps)
	return ref.IDs
}

// Greedy decoding is the sequence whose every prefix's argmax is the next token, so one
// prefill of BOS + ids[:255] must predict ids[p] at every position p.
func TestGreedyMatchesReferenceInOnePrefill(t *testing.T) {
	m := loadStories(t)
	ids := readGreedyRef(t)
	seq := append([]int{1}, ids[:len(ids)-1]...)
	logits, err := m.Forward([][]int{seq}, nil)
	require.NoError(t, err)
	V := m.Config.Vocab
	for p := range seq {
		require.Equal(t, ids[p], testutil.Argmax(logits[0][p*V:(p+1)*V]), "position %d", p)
	}
}

// Step-by-step greedy decoding, recomputing the prefill each step as a user would.
func TestGreedyStepByStep(t *testing.T) {
	m := loadStories(t)
	ids := readGreedyRef(t)
	V := m.Config.Vocab
	seq := []int{1}
	steps := 256
	if testing.Short() {
		steps = 32
	}
	for p := 0; p < steps; p++ {
		logits, err := m.Forward([][]int{seq}, nil)
		require.NoError(t, err)
		next := testutil.Argmax(logits[0][p*V : (p+1)*V])
		require.Equal(t, ids[p], next, "step %d", p)
		seq = append(seq, next)
	}
}

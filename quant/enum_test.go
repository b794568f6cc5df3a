package quant

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnumNameAndParse(t *testing.T) {
	names := []string{2: "two", 3: "three"} // 0 and 1 have no name
	assert.Equal(t, "two", EnumName("Num", uint8(2), names))
	assert.Equal(t, "Num(1)", EnumName("Num", uint8(1), names))
	assert.Equal(t, "Num(200)", EnumName("Num", uint8(200), names))

	v, err := ParseEnum[uint8]("three", names, "number", "two or three")
	require.NoError(t, err)
	assert.Equal(t, uint8(3), v)
	for _, bad := range []string{"", "four", "Two"} {
		_, err := ParseEnum[uint8](bad, names, "number", "two or three")
		assert.EqualError(t, err, `unknown number "`+bad+`" (want two or three)`)
	}
}

// Every named value of the package's enums reads back from its name.
func TestEnumsRoundTrip(t *testing.T) {
	for _, g := range []Granularity{PerTensor, PerChannel, PerGroup} {
		got, err := ParseGranularity(g.String())
		require.NoError(t, err)
		assert.Equal(t, g, got)
	}
	assert.Equal(t, "Granularity(0)", Granularity(0).String())
	assert.Equal(t, "per-token", ActDynamic.String())
	assert.Equal(t, "ActMode(3)", ActMode(3).String())
	assert.Equal(t, "ref", RoundRef.String())
	assert.Equal(t, "Rounding(4)", Rounding(4).String())
	_, err := ParseGranularity("row")
	assert.EqualError(t, err, `unknown granularity "row" (want tensor, channel or group)`)
}

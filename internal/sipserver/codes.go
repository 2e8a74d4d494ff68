package sipserver

import "github.com/lantel/lantel/domain"

// statusOf maps every refusal kind to a SIP final response; a kind missing
// here is a bug that the package test catches. Any error that is not a
// refusal is storage trouble: 503 with Retry-After.
var statusOf = map[domain.Kind]struct {
	code   int
	reason string
}{
	domain.Invalid:       {400, "Bad Request"},
	domain.NotFound:      {404, "Not Found"},
	domain.UnknownServer: {404, "Not Found"},
	domain.Offline:       {480, "Temporarily Unavailable"},
	domain.Reserved:      {403, "Forbidden"},
	domain.InUse:         {403, "Forbidden"},
	domain.Denied:        {403, "Forbidden"},
	domain.Conflict:      {403, "Forbidden"},
	domain.Exhausted:     {403, "Forbidden"},
	// Answered with a challenge (see refuse); this entry is for requests
	// that cannot take one.
	domain.Unauthenticated: {401, "Unauthorized"},
}

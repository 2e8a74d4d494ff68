package sipserver

import (
	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/domain"
)

// status is a SIP final response: its code, its reason phrase, and for a
// failure the Retry-After (seconds) that tells the phone when to try again.
type status struct {
	code       int
	reason     string
	retryAfter string
}

// statusOf maps every kind to a SIP final response; a kind missing here is
// a bug that the package test catches. An error without a kind is storage
// trouble, as the failure kinds: 503 with Retry-After (failed).
var statusOf = map[domain.Kind]status{
	domain.Invalid:       {400, "Bad Request", ""},
	domain.NotFound:      {404, "Not Found", ""},
	domain.UnknownServer: {404, "Not Found", ""},
	domain.Offline:       {480, "Temporarily Unavailable", ""},
	domain.Reserved:      {403, "Forbidden", ""},
	domain.InUse:         {403, "Forbidden", ""},
	domain.Denied:        {403, "Forbidden", ""},
	domain.Conflict:      {403, "Forbidden", ""},
	domain.Exhausted:     {403, "Forbidden", ""},
	// Answered with a challenge (see refuse); this entry is for requests
	// that cannot take one.
	domain.Unauthenticated: {401, "Unauthorized", ""},
	// Failures: no quorum or storage trouble, or a node cut off from its
	// cluster; the phone tries again (RFC 3261 21.5.4: another server of
	// its list, or this one after Retry-After).
	domain.Unavailable: failed,
	domain.Stale:       failed,
}

// failed is the answer to a request the service could not carry out.
var failed = status{503, "Service Unavailable", "5"}

// answerOf is the final response to a request the service refused or
// failed: the status of err's kind, with the refusal's reason after the
// phrase (on one line), and Retry-After for a failure; an error without a
// kind is a failure, whose text is not sent. isFailure tells the caller to
// log it as one.
func answerOf(err error) (code int, reason string, hdrs []sip.Header, isFailure bool) {
	st, e := failed, domain.As(err)
	if e != nil {
		if s, ok := statusOf[e.Kind]; ok {
			st = s
		}
	}
	reason = st.reason
	if e != nil {
		reason += ": " + sanitize(e.Reason)
	}
	if st.retryAfter != "" {
		hdrs = []sip.Header{sip.NewHeader("Retry-After", st.retryAfter)}
	}
	return st.code, reason, hdrs, e == nil || e.Kind.Failure()
}

package parley

import "context"

// Stores holds one value per store role. A database adapter usually fills
// every field with itself (sqlstore.DB.Stores), but callers see only the
// role they use, and a new capability adds its own small interface and a
// field here rather than growing an existing role.
type Stores struct {
	Users         UserStore
	Sessions      SessionStore
	Social        SocialStore
	Conversations ConversationStore
	Messages      MessageStore
	Receipts      ReceiptStore
	Changes       ChangeStore
	Groups        GroupStore
	Scheduled     ScheduleStore
	Media         MediaStore
	Communities   CommunityStore
	Calls         CallStore
	Notify        NotifyStore
	Mail          MailStore
	Statuses      StatusStore
	Analytics     AnalyticsStore
	Tickets       TicketStore
	Health        Pinger
}

// Pinger checks that a store is reachable.
type Pinger interface {
	// Ping answers nil when the store can serve requests.
	Ping(ctx context.Context) error
}

package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/parley-chat/parley/service"
)

type groupIDInput = service.DeleteGroupInput

// groupRoutes are the group routes of API.md §5.
func (a *API) groupRoutes() []route {
	s := a.svc
	return []route{
		{Method: "POST", Path: "/api/groups/create", Status: http.StatusCreated, In: service.CreateGroupInput{}, Out: service.GroupView{},
			Summary: "Create a group (at most 1024 members) with the caller as owner and admin; group_member_added goes to every member.",
			handle:  withBody(s.CreateGroup)},
		{Method: "GET", Path: "/api/groups/{groupId}", Summary: "A group with its members and settings (members only; others get 404).",
			Out: service.GroupView{},
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.Group(ctx, c.caller, c.r.PathValue("groupId"))
			}},
		{Method: "GET", Path: "/api/groups/user/{userId}", Summary: "The caller's groups (userId must be the caller), newest first.",
			Out: []service.GroupView{},
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.UserGroups(ctx, c.caller, c.r.PathValue("userId"))
			}},
		{Method: "POST", Path: "/api/groups/members/add", In: service.AddMembersInput{}, Out: service.AddMembersResult{},
			Summary: "Add members (admins only when onlyAdminsCanAddMembers); they see messages from now on. 409 when the group would exceed 1024 members.",
			handle: withBodyMessage(s.AddMembers, func(r *service.AddMembersResult) string {
				return fmt.Sprintf("Added %d new members to the group", len(r.NewMembers))
			})},
		{Method: "POST", Path: "/api/groups/members/remove", In: service.RemoveMemberInput{}, Out: service.RemoveMemberResult{},
			Summary: "Remove a member (admins; never the owner) or leave (memberId = caller). The last admin leaving promotes the longest-standing member.",
			handle:  withBodyMessage(s.RemoveMember, text[*service.RemoveMemberResult]("Member removed from the group"))},
		{Method: "POST", Path: "/api/groups/members/role", In: service.RoleInput{}, Out: service.RoleResult{},
			Summary: "Make a member admin or member (admins only; the owner stays admin).",
			handle:  withBodyMessage(s.SetRole, text[*service.RoleResult]("Member role updated"))},
		{Method: "POST", Path: "/api/groups/settings", In: service.GroupSettingsInput{}, Out: service.GroupView{},
			Summary: "Change onlyAdminsCanSend / onlyAdminsCanAddMembers (admins only); absent switches keep their value.",
			handle:  withBodyMessage(s.UpdateGroupSettings, text[*service.GroupView]("Group settings updated"))},
		{Method: "POST", Path: "/api/groups/update", In: service.UpdateGroupInput{}, Out: service.GroupView{},
			Summary: "Change the group's name, description or avatar (admins only); absent fields keep their value.",
			handle:  withBody(s.UpdateGroup)},
		{Method: "POST", Path: "/api/groups/delete", In: groupIDInput{}, Out: service.DeleteGroupResult{},
			Summary: "Delete the group and its messages (admins only); group_deleted goes to every member.",
			handle:  withBodyMessage(s.DeleteGroup, text[*service.DeleteGroupResult]("Group deleted successfully"))},
		{Method: "POST", Path: "/api/group-messages/send", Status: http.StatusCreated, In: service.GroupSendInput{}, Out: service.GroupSendResult{},
			Summary: "Send a group message; answered after it is committed. Delivered to the members at the moment of the commit.",
			handle:  withBody(s.SendGroupMessage)},
		{Method: "GET", Path: "/api/group-messages/{groupId}", Summary: "The group's messages the caller may see (sent while a member), newest first. A member removed from the group keeps reading those sent during their last membership; anyone else gets 404.",
			Query: historyParams, Out: []service.MessageView{},
			handle: func(ctx context.Context, c *call) (any, error) {
				q, err := historyQuery(c.r)
				if err != nil {
					return nil, err
				}
				return s.GroupHistory(ctx, c.caller, c.r.PathValue("groupId"), q)
			}},
		{Method: "POST", Path: "/api/group-messages/react", In: service.GroupReactInput{}, Out: service.GroupReactResult{},
			Summary: "Set (or with an empty reaction remove) the caller's reaction to a group message.",
			handle:  withBody(s.GroupReact)},
		{Method: "POST", Path: "/api/group-messages/delete", In: service.GroupDeleteInput{}, Out: service.GroupDeleteResult{},
			Summary: "Delete a group message for everyone (its sender or a group admin, 48 h) or for the caller only.",
			handle:  withBodyMessage(s.GroupDeleteMessage, text[*service.GroupDeleteResult]("Message deleted successfully"))},
		{Method: "POST", Path: "/api/group-messages/status", In: service.GroupStatusInput{}, Out: service.GroupStatusResult{},
			Summary: "Mark a group message (and every earlier one of the group) delivered or seen for the caller.",
			handle:  withBody(s.GroupMarkStatus)},
		{Method: "GET", Path: "/api/group-messages/{messageId}/status", Out: service.GroupReceipts{},
			Summary: "Who received and who read a group message, with times (the message's sender only).",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.GroupMessageReceipts(ctx, c.caller, c.r.PathValue("messageId"))
			}},
	}
}

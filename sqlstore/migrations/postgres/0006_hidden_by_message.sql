-- Who hid a message ("delete for me"), looked up by message: later changes
-- of that message (edits, reactions, a delete for everyone) are not
-- published to them.
CREATE INDEX message_hidden_message ON message_hidden (message_id);

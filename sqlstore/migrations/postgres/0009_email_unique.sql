-- E-mail addresses are unique, whatever their case: a password reset must
-- never go to another account that registered the same address. Existing
-- duplicates keep the address on the earliest-registered account; the
-- later ones lose it (e-mail is optional: they can no longer reset their
-- password by e-mail until they register an address of their own).
UPDATE users SET email = '', email_lower = ''
    WHERE email_lower <> '' AND EXISTS (SELECT 1 FROM users o WHERE o.email_lower = users.email_lower
        AND (o.created_at < users.created_at OR (o.created_at = users.created_at AND o.id < users.id)));
DROP INDEX users_email_lower;
CREATE UNIQUE INDEX users_email_lower ON users (email_lower) WHERE email_lower <> '';

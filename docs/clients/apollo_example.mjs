// Apollo Client 4 against the bank CRM: sign in, import a CSV by multipart upload, follow the job over
// graphql-transport-ws. Run: node apollo_example.mjs http://127.0.0.1:8000/graphql USERNAME PASSWORD customers.csv
import { readFile } from "node:fs/promises";
import { ApolloClient, ApolloLink, InMemoryCache, gql } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import UploadHttpLink from "apollo-upload-client/UploadHttpLink.mjs";
import { createClient } from "graphql-ws";
import { WebSocket } from "ws"; // Node.js only: a browser has its own WebSocket

const [url, username, password, csvPath] = process.argv.slice(2);
let token = null; // an SPA keeps it in memory (not localStorage), and signs in again when it expires

const auth = new SetContextLink((prevContext) => ({
  headers: { ...prevContext.headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
}));
// Queries and mutations over HTTP (multipart when the variables hold a File or Blob), subscriptions over a websocket.
const http = new UploadHttpLink({ uri: url });
const ws = new GraphQLWsLink(
  createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: () => ({ Authorization: `Bearer ${token}` }),
  }),
);
const isSubscription = ({ query }) => {
  const definition = getMainDefinition(query);
  return definition.kind === "OperationDefinition" && definition.operation === "subscription";
};
const client = new ApolloClient({
  link: ApolloLink.split(isSubscription, ws, auth.concat(http)),
  cache: new InMemoryCache(),
});

const LOGIN = gql`
  mutation Login($input: LoginInput!) {
    login(input: $input) { token errors { message code } }
  }
`;
const IMPORT = gql`
  mutation Import($input: ImportCustomersInput!) {
    importCustomers(input: $input) { job { id status } errors { field message code } }
  }
`;
const PROGRESS = gql`
  subscription Progress($id: ID!) {
    jobProgress(id: $id) { id status progress processed failed result }
  }
`;

const { data: signedIn } = await client.mutate({ mutation: LOGIN, variables: { input: { username, password } } });
if (signedIn.login.errors.length) throw new Error(signedIn.login.errors[0].message);
token = signedIn.login.token;

// In a browser: the File from <input type="file">.
const file = new File([await readFile(csvPath)], "customers.csv", { type: "text/csv" });
const { data: imported } = await client.mutate({ mutation: IMPORT, variables: { input: { file } } });
if (imported.importCustomers.errors.length) throw new Error(imported.importCustomers.errors[0].message);
const jobId = imported.importCustomers.job.id;

// The current state first, then each change, until the job is finished (the server completes the subscription).
const last = await new Promise((resolve, reject) => {
  let latest = null;
  client.subscribe({ query: PROGRESS, variables: { id: jobId } }).subscribe({
    next: ({ data, error }) => {
      if (error) return reject(error);
      latest = data.jobProgress;
      console.error(`job ${latest.id}: ${latest.status} ${Math.round(latest.progress * 100)}%`);
    },
    error: reject,
    complete: () => resolve(latest),
  });
});
console.log(JSON.stringify(last));
await client.stop?.();
process.exit(last.status === "SUCCEEDED" ? 0 : 1);

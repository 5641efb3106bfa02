package ferrettest_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/halo-cdp/halo/store/ferrettest"
)

func TestStart(t *testing.T) {
	uri := ferrettest.Start(t)
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(t.Context())
	c := client.Database("t").Collection("c")
	if _, err := c.InsertOne(t.Context(), bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var got struct{ N int }
	if err := c.FindOne(t.Context(), bson.D{{Key: "_id", Value: "a"}}).Decode(&got); err != nil || got.N != 1 {
		t.Fatalf("find: %+v, %v", got, err)
	}
}

func TestStartForMain(t *testing.T) {
	uri, stop, err := ferrettest.StartForMain()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(t.Context())
	if err := client.Ping(t.Context(), nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
}
